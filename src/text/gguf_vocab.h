// Tokenizers in GGUF metadata (tokenizer.ggml.*): from a HF tokenizer folder to GGUF keys, and
// from GGUF keys back to a brisk Tokenizer, as llama.cpp's convert_hf_to_gguf.py and
// llama-vocab.cpp see them.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "text/tokenizer.h"

namespace brisk::text {

struct GGUFVocab {
  std::string model;   // "gpt2" (byte-level BPE) or "llama" (SentencePiece-style with scores)
  std::string pre;     // llama.cpp pre-tokenizer name: "llama-bpe", "qwen2", "default", ...
  std::vector<std::string> tokens;
  std::vector<double> scores;        // empty for gpt2
  std::vector<int64_t> token_types;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;   // "a b", gpt2 only
  int64_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;      // llama only: SentencePiece's "▁" before the text (false for Gemma)
  std::string chat_template;
};

// From MODEL_DIR's tokenizer.json + tokenizer_config.json (+ chat template). Throws naming
// what it cannot express in GGUF.
GGUFVocab gguf_vocab_from_dir(const std::string& model_dir);
// Adds the tokenizer.ggml.* keys (and tokenizer.chat_template) to a writer.
void write_gguf_vocab(const GGUFVocab& v, io::GGUFWriter& w);
// Reads tokenizer.ggml.* from a GGUF file into a Tokenizer that encodes/decodes like the HF
// tokenizer it came from (gpt2 with known pre-tokenizers; llama/SentencePiece via scores).
Tokenizer tokenizer_from_gguf(const io::GGUFFile& f);

}  // namespace brisk::text
