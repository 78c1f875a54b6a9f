// From a parsed row to token ids and labels: chat rendering with train-on-responses-only
// masking that works for any chat template, plain prompt/response pairs for models without
// one, and raw text.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "train/dataset.h"

namespace brisk::train {

// The conversation rendered by `tmpl` (add_generation_prompt=false) and tokenized without
// adding special tokens: exactly transformers' apply_chat_template(tokenize=True).
// With responses_only, only assistant turns at index >= first_trained_message are trained:
// from where the assistant content starts (the end of the generation prompt) through the
// turn's end-of-turn text (e.g. "<|eot_id|>", "<|im_end|>\n", "<end_of_turn>\n").
//
// How the turns are found without knowing the template: for assistant turn k,
//   start = where render(messages[:k], add_generation_prompt=true) stops matching the full text;
//   end-of-turn text = the common suffix of renders of messages[:k] + [assistant "<probe>"] for
//   two different probes, looked up after `start` in the full text.
// A template that appends its generation prompt even with add_generation_prompt=false (early
// Llama 3 templates) has that trailer recognised (it is what an empty conversation renders to)
// and kept out of the trained text. Character spans become token spans by tokenizing the text
// before each boundary and comparing with the full ids; a token that straddles a boundary is
// trained. Templates that render earlier turns differently once later turns exist raise a
// brisk::Error naming the template and the turn.
Example tokenize_chat(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                      size_t first_trained_message, const text::Tokenizer& tok, const text::ChatTemplate& tmpl,
                      bool responses_only, const nlohmann::ordered_json& template_kwargs);

// prompt + response as one text, tokenized with special tokens (BOS as the tokenizer adds it),
// EOS appended; with responses_only the prompt tokens are masked.
Example tokenize_prompt_response(const std::string& prompt, const std::string& response, const text::Tokenizer& tok,
                                 bool responses_only);

// encode(text, add_special_tokens=true) + EOS (when the tokenizer has one and it is not already
// last); every token trained.
Example tokenize_text(const std::string& text, const text::Tokenizer& tok);

}  // namespace brisk::train
