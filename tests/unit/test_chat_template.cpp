// Chat template layer: template lookup, special tokens, message validation, the variables
// transformers passes, and the `brisk chat-template` CLI contract.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/fs.h"
#include "text/chat_template.h"

namespace {

using json = nlohmann::ordered_json;
using brisk::testing::TempDir;
using brisk::text::ChatTemplate;
using brisk::text::find_chat_template;

json user(const std::string& text) { return {{"role", "user"}, {"content", text}}; }

TEST(ChatTemplateLookup, JinjaFileWinsOverTokenizerConfig) {
  TempDir d;
  brisk::write_file_atomic(d.path + "/tokenizer_config.json", R"({"chat_template": "from-config"})");
  auto src = find_chat_template(d.path, false);
  ASSERT_TRUE(src);
  EXPECT_EQ(src->text, "from-config");
  EXPECT_EQ(src->origin, "tokenizer_config.json");
  brisk::write_file_atomic(d.path + "/chat_template.jinja", "from-file");
  src = find_chat_template(d.path, false);
  ASSERT_TRUE(src);
  EXPECT_EQ(src->text, "from-file");
  EXPECT_EQ(src->origin, "chat_template.jinja");
}

TEST(ChatTemplateLookup, NamedTemplateListPicksToolUseOnlyWithTools) {
  TempDir d;
  brisk::write_file_atomic(d.path + "/tokenizer_config.json",
                           R"({"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]})");
  EXPECT_EQ(find_chat_template(d.path, false)->text, "D");
  EXPECT_EQ(find_chat_template(d.path, true)->text, "T");
  brisk::write_file_atomic(d.path + "/tokenizer_config.json", R"({"chat_template": [{"name": "default", "template": "D"}]})");
  EXPECT_EQ(find_chat_template(d.path, true)->text, "D");
}

TEST(ChatTemplateLookup, MissingTemplateIsNulloptAndBadConfigIsAnError) {
  TempDir d;
  EXPECT_FALSE(find_chat_template(d.path, false));
  brisk::write_file_atomic(d.path + "/tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_FALSE(find_chat_template(d.path, false));
  brisk::write_file_atomic(d.path + "/tokenizer_config.json", R"({"chat_template": 5})");
  EXPECT_THROW(find_chat_template(d.path, false), brisk::Error);
  brisk::write_file_atomic(d.path + "/tokenizer_config.json", "{not json");
  EXPECT_THROW(find_chat_template(d.path, false), brisk::Error);
}

TEST(ChatTemplateLookup, SpecialTokensAsStringOrAddedToken) {
  json cfg = json::parse(R"({"bos_token": "<s>", "eos_token": {"content": "</s>", "lstrip": false}, "pad_token": null})");
  EXPECT_EQ(brisk::text::special_token_text(cfg, "bos_token"), "<s>");
  EXPECT_EQ(brisk::text::special_token_text(cfg, "eos_token"), "</s>");
  EXPECT_EQ(brisk::text::special_token_text(cfg, "pad_token"), "");
  EXPECT_EQ(brisk::text::special_token_text(cfg, "unk_token"), "");
}

TEST(ChatTemplateRender, PassesTransformersVariables) {
  ChatTemplate t("{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}"
                 "{{ tools is defined }}/{{ tools is none }}/{{ documents is none }}/{{ add_generation_prompt }}"
                 "/{{ enable_thinking }}{{ eos_token }}");
  json msgs = json::array({user("hi")});
  EXPECT_EQ(t.render(msgs, nullptr, true, "<s>", "</s>", {{"enable_thinking", false}}), "<s>user:hi;True/True/True/True/False</s>");
  EXPECT_EQ(t.render(msgs, json::array({{{"type", "function"}}}), false, "", ""), "user:hi;True/False/True/False/");
}

TEST(ChatTemplateRender, ValidatesMessagesShape) {
  ChatTemplate t("{{ messages | length }}");
  EXPECT_THROW(t.render(json::object(), nullptr, false, "", ""), brisk::Error);
  EXPECT_THROW(t.render(json::array({"hi"}), nullptr, false, "", ""), brisk::Error);
  EXPECT_THROW(t.render(json::array({user("x")}), json::object(), false, "", ""), brisk::Error);
  EXPECT_EQ(t.render(json::array(), nullptr, false, "", ""), "0");
}

TEST(ChatTemplateRender, ErrorsNameOriginAndLine) {
  try {
    ChatTemplate("a\n{% if %}", "chat_template.jinja");
    FAIL() << "expected a syntax error";
  } catch (const brisk::Error& e) {
    EXPECT_EQ(std::string(e.what()), "chat_template.jinja line 2: unexpected end of statement block");
  }
  ChatTemplate t("{% for m in messages %}\n{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% endfor %}");
  try {
    t.render(json::array({{{"role", "system"}, {"content", "x"}}}), nullptr, false, "", "");
    FAIL() << "expected raise_exception";
  } catch (const brisk::Error& e) {
    EXPECT_EQ(std::string(e.what()), "chat template line 2: System role not supported");
  }
}

TEST(ChatTemplateCli, RendersExactlyWithoutTrailingNewline) {
  TempDir d;
  brisk::write_file_atomic(d.path + "/tokenizer_config.json",
                           R"({"bos_token": {"content": "<B>"}, "eos_token": "<E>", "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}{{ x }}{{ eos_token }}"})");
  brisk::write_file_atomic(d.path + "/m.json", R"([{"role": "user", "content": "héllo"}])");
  std::string out;
  std::string cmd = std::string(BRISK_BINARY) + " chat-template " + d.path + " --messages " + d.path + "/m.json";
  ASSERT_EQ(brisk::testing::run_command(cmd + " --add-generation-prompt --set x=[1,2] 2>&1", &out), 0) << out;
  EXPECT_EQ(out, "<B>[héllo]>[1, 2]<E>");
  out.clear();  // run_command appends
  ASSERT_EQ(brisk::testing::run_command(cmd + " --set x=plain 2>&1", &out), 0) << out;
  EXPECT_EQ(out, "<B>[héllo]plain<E>");
}

TEST(ChatTemplateCli, ErrorsAreOneLineAndExitOne) {
  TempDir d;
  brisk::write_file_atomic(d.path + "/tokenizer_config.json", R"({"eos_token": "<E>"})");
  brisk::write_file_atomic(d.path + "/m.json", R"({"role": "user"})");
  std::string out;
  std::string cmd = std::string(BRISK_BINARY) + " chat-template " + d.path + " --messages " + d.path + "/m.json 2>&1";
  int rc = brisk::testing::run_command(cmd, &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("no chat template"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  brisk::write_file_atomic(d.path + "/chat_template.jinja", "{{ messages }}");
  out.clear();
  rc = brisk::testing::run_command(cmd, &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("messages must be a JSON array"), std::string::npos) << out;
  brisk::write_file_atomic(d.path + "/m.json", "[oops");
  out.clear();
  rc = brisk::testing::run_command(cmd, &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("invalid JSON"), std::string::npos) << out;
}

}  // namespace
