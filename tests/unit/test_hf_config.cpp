// config.json / generation_config.json: real configs of every supported family, both RoPE
// layouts, round trips through model_config_to_json, and the errors users meet.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/fs.h"
#include "io/hf_config.h"

using namespace brisk;
using namespace brisk::io;
using brisk::testing::TempDir;

namespace {

// Verbatim shapes of the published config.json files (whitespace aside).
const char* kLlama2_7B = R"({"architectures":["LlamaForCausalLM"],"bos_token_id":1,"eos_token_id":2,
 "hidden_act":"silu","hidden_size":4096,"initializer_range":0.02,"intermediate_size":11008,
 "max_position_embeddings":4096,"model_type":"llama","num_attention_heads":32,"num_hidden_layers":32,
 "num_key_value_heads":32,"pretraining_tp":1,"rms_norm_eps":1e-05,"rope_scaling":null,
 "tie_word_embeddings":false,"torch_dtype":"float16","transformers_version":"4.31.0.dev0",
 "use_cache":true,"vocab_size":32000})";

const char* kLlama31_8B = R"({"architectures":["LlamaForCausalLM"],"attention_bias":false,
 "attention_dropout":0.0,"bos_token_id":128000,"eos_token_id":[128001,128008,128009],"hidden_act":"silu",
 "hidden_size":4096,"initializer_range":0.02,"intermediate_size":14336,"max_position_embeddings":131072,
 "mlp_bias":false,"model_type":"llama","num_attention_heads":32,"num_hidden_layers":32,
 "num_key_value_heads":8,"pretraining_tp":1,"rms_norm_eps":1e-05,
 "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
   "original_max_position_embeddings":8192,"rope_type":"llama3"},
 "rope_theta":500000.0,"tie_word_embeddings":false,"torch_dtype":"bfloat16",
 "transformers_version":"4.43.0.dev0","use_cache":true,"vocab_size":128256})";

const char* kLlama32_1B = R"({"architectures":["LlamaForCausalLM"],"attention_bias":false,
 "attention_dropout":0.0,"bos_token_id":128000,"eos_token_id":128001,"head_dim":64,"hidden_act":"silu",
 "hidden_size":2048,"initializer_range":0.02,"intermediate_size":8192,"max_position_embeddings":131072,
 "mlp_bias":false,"model_type":"llama","num_attention_heads":32,"num_hidden_layers":16,
 "num_key_value_heads":8,"pretraining_tp":1,"rms_norm_eps":1e-05,
 "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
   "original_max_position_embeddings":8192,"rope_type":"llama3"},
 "rope_theta":500000.0,"tie_word_embeddings":true,"torch_dtype":"bfloat16",
 "transformers_version":"4.45.0.dev0","use_cache":true,"vocab_size":128256})";

const char* kMistral7B_v01 = R"({"architectures":["MistralForCausalLM"],"bos_token_id":1,"eos_token_id":2,
 "hidden_act":"silu","hidden_size":4096,"initializer_range":0.02,"intermediate_size":14336,
 "max_position_embeddings":32768,"model_type":"mistral","num_attention_heads":32,"num_hidden_layers":32,
 "num_key_value_heads":8,"rms_norm_eps":1e-05,"rope_theta":10000.0,"sliding_window":4096,
 "tie_word_embeddings":false,"torch_dtype":"bfloat16","transformers_version":"4.34.0.dev0",
 "use_cache":true,"vocab_size":32000})";

const char* kMistral7B_v03 = R"({"architectures":["MistralForCausalLM"],"attention_dropout":0.0,
 "bos_token_id":1,"eos_token_id":2,"hidden_act":"silu","hidden_size":4096,"initializer_range":0.02,
 "intermediate_size":14336,"max_position_embeddings":32768,"model_type":"mistral",
 "num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,"rms_norm_eps":1e-05,
 "rope_theta":1000000.0,"sliding_window":null,"tie_word_embeddings":false,"torch_dtype":"bfloat16",
 "transformers_version":"4.42.0.dev0","use_cache":true,"vocab_size":32768})";

const char* kQwen25_7B = R"({"architectures":["Qwen2ForCausalLM"],"attention_dropout":0.0,
 "bos_token_id":151643,"eos_token_id":151645,"hidden_act":"silu","hidden_size":3584,
 "initializer_range":0.02,"intermediate_size":18944,"max_position_embeddings":32768,
 "max_window_layers":28,"model_type":"qwen2","num_attention_heads":28,"num_hidden_layers":28,
 "num_key_value_heads":4,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":131072,
 "tie_word_embeddings":false,"torch_dtype":"bfloat16","transformers_version":"4.43.1",
 "use_cache":true,"use_sliding_window":false,"vocab_size":152064})";

const char* kQwen3_8B = R"({"architectures":["Qwen3ForCausalLM"],"attention_bias":false,
 "attention_dropout":0.0,"bos_token_id":151643,"eos_token_id":151645,"head_dim":128,"hidden_act":"silu",
 "hidden_size":4096,"initializer_range":0.02,"intermediate_size":12288,"max_position_embeddings":40960,
 "max_window_layers":36,"model_type":"qwen3","num_attention_heads":32,"num_hidden_layers":36,
 "num_key_value_heads":8,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000,
 "sliding_window":null,"tie_word_embeddings":false,"torch_dtype":"bfloat16",
 "transformers_version":"4.51.0","use_cache":true,"use_sliding_window":false,"vocab_size":151936})";

// transformers v5 layout: rope_parameters holds theta and scaling; "dtype" replaces torch_dtype.
const char* kV5Llama = R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":128256,
 "hidden_size":2048,"intermediate_size":8192,"num_hidden_layers":16,"num_attention_heads":32,
 "num_key_value_heads":8,"head_dim":64,"max_position_embeddings":131072,"rms_norm_eps":1e-05,
 "rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,
   "high_freq_factor":4.0,"original_max_position_embeddings":8192},
 "tie_word_embeddings":true,"dtype":"bfloat16","bos_token_id":128000,"eos_token_id":128001})";

const char* kGemma2 = R"({"architectures":["Gemma2ForCausalLM"],"model_type":"gemma2","hidden_size":2304,
 "intermediate_size":9216,"num_hidden_layers":26,"num_attention_heads":8,"vocab_size":256000})";

std::string error_of(const std::string& text) {
  try {
    parse_hf_config(text, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// A minimal valid llama config with `patch` merged over it (RFC 7386: null values delete keys).
std::string llama_with(const std::string& patch) {
  auto j = nlohmann::json::parse(R"({"model_type":"llama","vocab_size":100,"hidden_size":64,
    "intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4})");
  j.merge_patch(nlohmann::json::parse(patch));
  return j.dump();
}

void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings, b.rope_scaling.original_max_position_embeddings);
  EXPECT_EQ(a.rope_scaling.attention_factor, b.rope_scaling.attention_factor);
  EXPECT_EQ(a.rope_scaling.beta_fast, b.rope_scaling.beta_fast);
  EXPECT_EQ(a.rope_scaling.beta_slow, b.rope_scaling.beta_slow);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.o_bias, b.o_bias);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.max_window_layers, b.max_window_layers);
  EXPECT_EQ(a.hidden_act, b.hidden_act);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.pad_token_id, b.pad_token_id);
}

void expect_round_trip(const ModelConfig& c) {
  std::string text = model_config_to_json(c);
  expect_same(c, parse_hf_config(text, "round-trip.json"));
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["model_type"], c.model_type);
  EXPECT_EQ(j["head_dim"], c.head_dim);
  EXPECT_TRUE(j["architectures"].is_array());
}

}  // namespace

TEST(HfConfig, Llama2_7B) {
  ModelConfig c = parse_hf_config(kLlama2_7B, "cfg.json");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::Default);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias || c.o_bias || c.mlp_bias || c.qk_norm);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.torch_dtype, "float16");
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.pad_token_id, -1);
  expect_round_trip(c);
}

TEST(HfConfig, Llama31_8B_Llama3RopeAndEosList) {
  ModelConfig c = parse_hf_config(kLlama31_8B, "cfg.json");
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::Llama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  auto j = nlohmann::json::parse(model_config_to_json(c));
  EXPECT_EQ(j["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(j["eos_token_id"], nlohmann::json({128001, 128008, 128009}));
  expect_round_trip(c);
}

TEST(HfConfig, Llama32_1B_Tied) {
  ModelConfig c = parse_hf_config(kLlama32_1B, "cfg.json");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_layers, 16);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{128001});
  expect_round_trip(c);
}

TEST(HfConfig, MistralSlidingWindow) {
  ModelConfig v1 = parse_hf_config(kMistral7B_v01, "cfg.json");
  EXPECT_EQ(v1.arch, Arch::Mistral);
  EXPECT_EQ(v1.sliding_window, 4096);
  EXPECT_EQ(v1.window_for_layer(0), 4096);
  EXPECT_EQ(v1.num_kv_heads, 8);
  EXPECT_FALSE(v1.attention_bias);
  expect_round_trip(v1);
  ModelConfig v3 = parse_hf_config(kMistral7B_v03, "cfg.json");
  EXPECT_EQ(v3.sliding_window, 0);
  EXPECT_EQ(v3.window_for_layer(31), 0);
  EXPECT_EQ(v3.vocab_size, 32768);
  EXPECT_EQ(v3.rope_theta, 1e6);
  expect_round_trip(v3);
  // MistralConfig's defaults when the keys are absent: 8 kv heads, a 4096 window.
  auto j = nlohmann::json::parse(kMistral7B_v01);
  j.erase("sliding_window");
  j.erase("num_key_value_heads");
  ModelConfig d = parse_hf_config(j.dump(), "cfg.json");
  EXPECT_EQ(d.sliding_window, 4096);
  EXPECT_EQ(d.num_kv_heads, 8);
}

TEST(HfConfig, Qwen25_7B_BiasAndDisabledSlidingWindow) {
  ModelConfig c = parse_hf_config(kQwen25_7B, "cfg.json");
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 128);  // 3584 / 28
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.sliding_window, 0) << "use_sliding_window is false";
  EXPECT_EQ(c.max_window_layers, 28);
  EXPECT_EQ(c.window_for_layer(27), 0);
  expect_round_trip(c);

  auto j = nlohmann::json::parse(kQwen25_7B);
  j["use_sliding_window"] = true;
  j["sliding_window"] = 4096;
  j["max_window_layers"] = 20;
  ModelConfig s = parse_hf_config(j.dump(), "cfg.json");
  EXPECT_EQ(s.sliding_window, 4096);
  EXPECT_EQ(s.window_for_layer(19), 0);
  EXPECT_EQ(s.window_for_layer(20), 4096);
  expect_round_trip(s);
}

TEST(HfConfig, Qwen3_8B) {
  ModelConfig c = parse_hf_config(kQwen3_8B, "cfg.json");
  EXPECT_EQ(c.arch, Arch::Qwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_layers, 36);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.max_window_layers, 36);
  EXPECT_EQ(c.sliding_window, 0);
  expect_round_trip(c);
  // head_dim is explicit in Qwen3 and need not be hidden/heads (Qwen3-0.6B: 1024/16 = 64, head_dim 128).
  auto j = nlohmann::json::parse(kQwen3_8B);
  j["hidden_size"] = 1024;
  j["num_attention_heads"] = 16;
  EXPECT_EQ(parse_hf_config(j.dump(), "cfg.json").head_dim, 128);
  j["attention_bias"] = true;
  ModelConfig b = parse_hf_config(j.dump(), "cfg.json");
  EXPECT_TRUE(b.attention_bias && b.o_bias);
  j.erase("head_dim");  // Qwen3Config's default is 128, not hidden/heads
  EXPECT_EQ(parse_hf_config(j.dump(), "cfg.json").head_dim, 128);
}

TEST(HfConfig, TransformersV5RopeParameters) {
  ModelConfig c = parse_hf_config(kV5Llama, "cfg.json");
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::Llama3);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  expect_same(c, parse_hf_config(kLlama32_1B, "cfg.json"));  // the same model in v4 spelling
  ModelConfig d = parse_hf_config(llama_with(R"({"rope_parameters":{"rope_theta":1e6,"rope_type":"default"}})"), "c");
  EXPECT_EQ(d.rope_theta, 1e6);
  EXPECT_EQ(d.rope_scaling.type, RopeType::Default);
}

TEST(HfConfig, OtherRopeTypes) {
  ModelConfig lin = parse_hf_config(llama_with(R"({"rope_scaling":{"type":"linear","factor":4}})"), "c");
  EXPECT_EQ(lin.rope_scaling.type, RopeType::Linear);
  EXPECT_EQ(lin.rope_scaling.factor, 4.0);
  expect_round_trip(lin);
  ModelConfig dyn = parse_hf_config(llama_with(R"({"rope_scaling":{"rope_type":"dynamic","factor":2.0}})"), "c");
  EXPECT_EQ(dyn.rope_scaling.type, RopeType::Dynamic);
  expect_round_trip(dyn);
  ModelConfig yarn = parse_hf_config(
      llama_with(R"({"rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32768,
                     "attention_factor":1.2,"beta_fast":16,"beta_slow":2}})"),
      "c");
  EXPECT_EQ(yarn.rope_scaling.type, RopeType::Yarn);
  EXPECT_EQ(yarn.rope_scaling.attention_factor, 1.2);
  EXPECT_EQ(yarn.rope_scaling.beta_fast, 16.0);
  EXPECT_EQ(yarn.rope_scaling.beta_slow, 2.0);
  EXPECT_EQ(yarn.rope_scaling.original_max_position_embeddings, 32768);
  expect_round_trip(yarn);
  ModelConfig yd = parse_hf_config(llama_with(R"({"rope_scaling":{"rope_type":"yarn","factor":4.0}})"), "c");
  EXPECT_EQ(yd.rope_scaling.attention_factor, 0.0);  // 0 = the 0.1 ln(factor) + 1 default
  EXPECT_EQ(yd.rope_scaling.beta_fast, 32.0);
  EXPECT_EQ(yd.rope_scaling.beta_slow, 1.0);
}

TEST(HfConfig, DefaultsAndNulls) {
  auto nulls = nlohmann::json::parse(llama_with(R"({"pad_token_id":0})"));
  for (const char* key : {"num_key_value_heads", "head_dim", "bos_token_id", "eos_token_id"}) nulls[key] = nullptr;
  ModelConfig c = parse_hf_config(nulls.dump(), "c");
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.pad_token_id, 0);
  expect_round_trip(c);
  ModelConfig d = parse_hf_config(llama_with("{}"), "c");  // LlamaConfig defaults
  EXPECT_EQ(d.num_kv_heads, 4);
  EXPECT_EQ(d.bos_token_id, 1);
  EXPECT_EQ(d.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(d.max_position_embeddings, 2048);
  EXPECT_EQ(d.rms_norm_eps, 1e-6);
  EXPECT_EQ(d.torch_dtype, "float32");
  EXPECT_FALSE(d.tie_word_embeddings);
  ModelConfig b = parse_hf_config(llama_with(R"({"attention_bias":true,"mlp_bias":true})"), "c");
  EXPECT_TRUE(b.attention_bias && b.o_bias && b.mlp_bias);  // llama: bias on q, k, v and o
  expect_round_trip(b);
}

TEST(HfConfig, Errors) {
  EXPECT_EQ(error_of(kGemma2),
            "cfg.json: unsupported model_type \"gemma2\" (supported: llama, mistral, qwen2, qwen3)");
  EXPECT_EQ(error_of("{}"), "cfg.json: missing \"model_type\" (supported: llama, mistral, qwen2, qwen3)");
  EXPECT_EQ(error_of("[1]"), "cfg.json: config is array, expected a JSON object");
  EXPECT_EQ(error_of(R"({"model_type":"llama",})").rfind("cfg.json: invalid JSON: ", 0), 0u);
  EXPECT_EQ(error_of(llama_with(R"({"hidden_size":null})")), "cfg.json: missing \"hidden_size\"");
  EXPECT_EQ(error_of(llama_with(R"({"hidden_size":"64"})")), "cfg.json: \"hidden_size\" is string \"64\", expected an integer");
  EXPECT_EQ(error_of(llama_with(R"({"hidden_size":64.5})")), "cfg.json: \"hidden_size\" is number 64.5, expected an integer");
  EXPECT_EQ(error_of(llama_with(R"({"model_type":7})")), "cfg.json: \"model_type\" is number 7, expected a string");
  EXPECT_EQ(error_of(llama_with(R"({"num_hidden_layers":0})")), "cfg.json: \"num_hidden_layers\" is 0, must be positive");
  EXPECT_EQ(error_of(llama_with(R"({"vocab_size":-5})")), "cfg.json: \"vocab_size\" is -5, must be positive");
  EXPECT_EQ(error_of(llama_with(R"({"num_key_value_heads":3})")),
            "cfg.json: num_key_value_heads (3) does not divide num_attention_heads (4)");
  EXPECT_EQ(error_of(llama_with(R"({"num_attention_heads":5})")),
            "cfg.json: num_attention_heads (5) does not divide hidden_size (64) and head_dim is not given");
  EXPECT_EQ(error_of(llama_with(R"({"num_attention_heads":5,"num_key_value_heads":5,"head_dim":16})")), "<no error>");
  EXPECT_EQ(error_of(llama_with(R"({"head_dim":0})")), "cfg.json: \"head_dim\" is 0, must be positive");
  EXPECT_EQ(error_of(llama_with(R"({"rms_norm_eps":0})")), "cfg.json: \"rms_norm_eps\" is 0, must be positive");
  EXPECT_EQ(error_of(llama_with(R"({"tie_word_embeddings":"yes"})")),
            "cfg.json: \"tie_word_embeddings\" is string \"yes\", expected true or false");
  EXPECT_EQ(error_of(llama_with(R"({"eos_token_id":[1,-2]})")), "cfg.json: \"eos_token_id\" holds -2, token ids are never negative");
  EXPECT_EQ(error_of(llama_with(R"({"eos_token_id":"</s>"})")), "cfg.json: \"eos_token_id\" is string \"</s>\", expected an integer");
  EXPECT_EQ(error_of(llama_with(R"({"rope_scaling":{"rope_type":"longrope","factor":2}})")),
            "cfg.json: unsupported RoPE type \"longrope\" in \"rope_scaling\" (supported: default, linear, dynamic, llama3, yarn)");
  EXPECT_EQ(error_of(llama_with(R"({"rope_scaling":{"rope_type":"llama3","factor":8,"high_freq_factor":4,
      "original_max_position_embeddings":8192}})")),
            "cfg.json: missing \"rope_scaling.low_freq_factor\" for RoPE type llama3");
  EXPECT_EQ(error_of(llama_with(R"({"rope_scaling":{"type":"linear"}})")),
            "cfg.json: missing \"rope_scaling.factor\" for RoPE type linear");
  EXPECT_EQ(error_of(llama_with(R"({"rope_scaling":{"type":"linear","factor":"2"}})")),
            "cfg.json: \"rope_scaling.factor\" is string \"2\", expected a number");
  EXPECT_EQ(error_of(llama_with(R"({"rope_scaling":{"type":"linear","factor":-2}})")),
            "cfg.json: \"rope_scaling.factor\" is -2, must be positive");
  EXPECT_EQ(error_of(llama_with(R"({"rope_scaling":"linear"})")),
            "cfg.json: \"rope_scaling\" is string \"linear\", expected an object");
  EXPECT_EQ(error_of(llama_with(R"({"rope_theta":-1})")), "cfg.json: \"rope_theta\" is -1, must be positive");
  EXPECT_EQ(error_of(llama_with(R"({"model_type":"mistral","num_key_value_heads":4,"sliding_window":-1})")),
            "cfg.json: \"sliding_window\" is -1, must not be negative");
}

TEST(HfConfig, LoadFromFolder) {
  TempDir tmp;
  EXPECT_THROW(load_model_config(tmp.path + "/nope"), Error);
  try {
    load_model_config(tmp.path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), tmp.path + " has no config.json");
  }
  write_file_atomic(tmp.path + "/config.json", kQwen3_8B);
  EXPECT_EQ(load_model_config(tmp.path).head_dim, 128);
  write_file_atomic(tmp.path + "/config.json", "{\"model_type\":");
  try {
    load_model_config(tmp.path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(tmp.path + "/config.json: invalid JSON", 0), 0u) << e.what();
  }
}

TEST(GenerationConfig, ParseLoadAndWrite) {
  TempDir tmp;
  GenerationConfig none = load_generation_config(tmp.path);  // optional file
  EXPECT_TRUE(none.eos_token_ids.empty());
  EXPECT_EQ(none.temperature, -1);

  write_file_atomic(tmp.path + "/generation_config.json",
                    R"({"bos_token_id":128000,"do_sample":true,"eos_token_id":[128001,128008,128009],
                        "temperature":0.6,"top_p":0.9,"transformers_version":"4.42.3"})");
  GenerationConfig g = load_generation_config(tmp.path);
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(g.bos_token_id, 128000);
  EXPECT_TRUE(g.do_sample);
  EXPECT_EQ(g.temperature, 0.6);
  EXPECT_EQ(g.top_p, 0.9);
  EXPECT_EQ(g.top_k, -1);
  EXPECT_EQ(g.min_p, -1);

  GenerationConfig r = parse_generation_config(generation_config_to_json(g), "g");
  EXPECT_EQ(r.eos_token_ids, g.eos_token_ids);
  EXPECT_EQ(r.bos_token_id, g.bos_token_id);
  EXPECT_EQ(r.do_sample, g.do_sample);
  EXPECT_EQ(r.temperature, g.temperature);
  EXPECT_EQ(r.top_p, g.top_p);
  EXPECT_EQ(r.top_k, -1);
  EXPECT_FALSE(nlohmann::json::parse(generation_config_to_json(g)).contains("top_k"));

  GenerationConfig one = parse_generation_config(R"({"eos_token_id":2,"top_k":20,"repetition_penalty":1.05})", "g");
  EXPECT_EQ(one.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(one.top_k, 20);
  EXPECT_EQ(one.repetition_penalty, 1.05);
  EXPECT_EQ(nlohmann::json::parse(generation_config_to_json(one))["eos_token_id"], 2);

  auto err = [](const std::string& t) {
    try {
      parse_generation_config(t, "g.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_EQ(err(R"({"top_p":1.5})"), "g.json: \"top_p\" is 1.5, not in [0, 1]");
  EXPECT_EQ(err(R"({"temperature":"hot"})"), "g.json: \"temperature\" is string \"hot\", expected a number");
  EXPECT_EQ(err(R"({"eos_token_id":[2,"x"]})"), "g.json: \"eos_token_id\" is string \"x\", expected an integer");
  EXPECT_EQ(err("3"), "g.json: generation config is number, expected a JSON object");
}
