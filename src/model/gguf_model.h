// Models from GGUF files (llama.cpp's format): the config from the GGUF metadata and the
// weights as stored (block-quantized tensors stay quantized and are dequantized on the fly by
// the ops; F16/BF16 tensors become F32), with llama.cpp's Q/K row permutation undone.
#pragma once
#include <string>

#include "io/gguf.h"
#include "model/config.h"
#include "model/weights.h"

namespace brisk {

bool is_gguf_path(const std::string& path);  // a regular file whose name ends in .gguf
ModelConfig config_from_gguf(const io::GGUFFile& f);
ModelWeights weights_from_gguf(const io::GGUFFile& f, const ModelConfig& cfg);
GenerationConfig generation_config_from_gguf(const io::GGUFFile& f);

}  // namespace brisk
