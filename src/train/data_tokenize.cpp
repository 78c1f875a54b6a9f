// Rendering and masking (see data_tokenize.h).
#include "train/data_tokenize.h"

#include <algorithm>

#include "core/error.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace brisk::train {
namespace {

using ojson = nlohmann::ordered_json;

size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

size_t common_suffix(std::string_view a, std::string_view b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[a.size() - 1 - i] == b[b.size() - 1 - i]) ++i;
  return i;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Index of the token of `ids` (the tokens of `text`) where character offset `pos` falls:
// the tokens of text[:pos] are compared with ids. When pos cuts a token in two, that token is
// counted inside the trained span: `round_up` says whether the boundary is an end.
size_t token_boundary(const text::Tokenizer& tok, std::string_view text, size_t pos, const std::vector<int32_t>& ids,
                      bool add_special_tokens, bool round_up) {
  if (pos == 0) return 0;
  if (pos >= text.size()) return ids.size();
  std::vector<int32_t> head = tok.encode(text.substr(0, pos), add_special_tokens);
  size_t n = std::min(head.size(), ids.size()), i = 0;
  while (i < n && head[i] == ids[i]) ++i;
  if (i == head.size()) return i;  // pos is a token boundary
  return round_up ? std::min(i + 1, ids.size()) : i;
}

class ChatRenderer {
 public:
  ChatRenderer(const text::ChatTemplate& tmpl, const text::Tokenizer& tok, const ojson& tools, const ojson& kwargs)
      : tmpl_(tmpl), tok_(tok), tools_(tools), kwargs_(kwargs.is_object() ? kwargs : ojson::object()) {}

  std::string render(const ojson& messages, bool add_generation_prompt) const {
    return tmpl_.render(messages, tools_, add_generation_prompt, tok_.bos_token(), tok_.eos_token(), kwargs_);
  }
  std::string render_prefix(const ojson& messages, size_t k, bool add_generation_prompt) const {
    ojson head = ojson::array();
    for (size_t i = 0; i < k; ++i) head.push_back(messages[i]);
    return render(head, add_generation_prompt);
  }

  // What the template appends after the last message even when no generation prompt is asked
  // for ("" for templates that honour add_generation_prompt, the usual case).
  std::string unconditional_trailer(const ojson& messages, const std::string& full) const {
    if (render(messages, true) != full) return "";  // add_generation_prompt changes the output
    std::string empty;
    try {
      empty = render(ojson::array(), false);
    } catch (const Error&) {
      return "";  // the template needs messages: no way to isolate a trailer; assume none
    }
    if (!empty.empty() && ends_with(full, empty)) return empty;
    return "";
  }

  std::string strip(std::string s, const std::string& trailer) const {
    if (!trailer.empty() && ends_with(s, trailer)) s.resize(s.size() - trailer.size());
    return s;
  }

  // The text the template writes after assistant message k's content up to the end of the
  // conversation (trailer excluded): its end-of-turn marker.
  std::string end_of_turn_text(const ojson& messages, size_t k, const std::string& trailer) const {
    std::string probes[2];
    const char* probe_text[2] = {"brisk probe 1", "brisk probe 2"};
    for (int p = 0; p < 2; ++p) {
      ojson head = ojson::array();
      for (size_t i = 0; i < k; ++i) head.push_back(messages[i]);
      ojson m = messages[k];
      m["content"] = probe_text[p];
      m.erase("reasoning_content");
      head.push_back(std::move(m));
      probes[p] = strip(render(head, false), trailer);
    }
    return probes[0].substr(probes[0].size() - common_suffix(probes[0], probes[1]));
  }

 private:
  const text::ChatTemplate& tmpl_;
  const text::Tokenizer& tok_;
  const ojson& tools_;
  ojson kwargs_;
};

}  // namespace

Example tokenize_chat(const ojson& messages, const ojson& tools, size_t first_trained_message,
                      const text::Tokenizer& tok, const text::ChatTemplate& tmpl, bool responses_only,
                      const ojson& template_kwargs) {
  BRISK_CHECK(messages.is_array() && !messages.empty(), "empty conversation");
  ChatRenderer r(tmpl, tok, tools, template_kwargs);
  const std::string full = r.render(messages, false);
  Example ex;
  ex.ids = tok.encode(full, /*add_special_tokens=*/false);
  if (!responses_only) {
    ex.labels = ex.ids;
    return ex;
  }
  ex.labels.assign(ex.ids.size(), kIgnoreLabel);
  const std::string trailer = r.unconditional_trailer(messages, full);
  const size_t full_end = full.size() - trailer.size();

  size_t prev_end = 0;  // character offset where the previous trained turn ended
  for (size_t k = first_trained_message; k < messages.size(); ++k) {
    if (messages[k].value("role", "") != "assistant") continue;
    const std::string where = cat("chat template ", tmpl.origin(), ", assistant message ", k);
    // Everything before turn k must render as it does in the full conversation.
    const std::string before = r.strip(r.render_prefix(messages, k, false), trailer);
    BRISK_CHECK(full.compare(0, before.size(), before) == 0, where,
                ": the messages before it render differently once later messages follow, so its start cannot be "
                "located (set train_on_responses_only: false to train on every token)");
    const std::string prompt = r.render_prefix(messages, k, true);
    const size_t start = std::max(common_prefix(prompt, full), before.size());
    const std::string eot = r.end_of_turn_text(messages, k, trailer);
    size_t end;
    if (eot.empty()) {
      // No end-of-turn text (a template that writes nothing after the content): the turn runs
      // to where the next message begins, i.e. the end of messages[:k+1] as rendered alone.
      end = k + 1 == messages.size() ? full_end : r.strip(r.render_prefix(messages, k + 1, false), trailer).size();
    } else {
      // The marker may begin before `start`: an empty content (a tool-call-only turn) leaves no
      // separator between the generation prompt and what follows, so the probe's separator is
      // the prompt's last character in the full text.
      const size_t from = std::max(prev_end, start + 1 > eot.size() ? start + 1 - eot.size() : 0);
      size_t at = full.find(eot, from);
      BRISK_CHECK(at != std::string::npos && at + eot.size() <= full_end, where, ": its end-of-turn text \"", eot,
                  "\" is not where the full conversation renders it");
      end = at + eot.size();
    }
    BRISK_CHECK(start >= prev_end && start <= end, where, ": turn boundaries out of order");
    prev_end = end;
    const size_t t0 = token_boundary(tok, full, start, ex.ids, false, /*round_up=*/false);
    const size_t t1 = token_boundary(tok, full, end, ex.ids, false, /*round_up=*/true);
    for (size_t t = t0; t < t1; ++t) ex.labels[t] = ex.ids[t];
  }
  return ex;
}

Example tokenize_prompt_response(const std::string& prompt, const std::string& response, const text::Tokenizer& tok,
                                 bool responses_only) {
  const std::string full = prompt + response;
  Example ex;
  ex.ids = tok.encode(full, /*add_special_tokens=*/true);
  ex.labels = ex.ids;
  if (responses_only) {
    const size_t boundary = token_boundary(tok, full, prompt.size(), ex.ids, true, /*round_up=*/false);
    std::fill(ex.labels.begin(), ex.labels.begin() + static_cast<std::ptrdiff_t>(boundary), kIgnoreLabel);
  }
  if (auto eos = tok.eos_id(); eos && (ex.ids.empty() || ex.ids.back() != *eos)) {
    ex.ids.push_back(*eos);
    ex.labels.push_back(*eos);
  }
  return ex;
}

Example tokenize_text(const std::string& text, const text::Tokenizer& tok) {
  Example ex;
  ex.ids = tok.encode(text, /*add_special_tokens=*/true);
  if (auto eos = tok.eos_id(); eos && (ex.ids.empty() || ex.ids.back() != *eos)) ex.ids.push_back(*eos);
  ex.labels = ex.ids;
  return ex;
}

}  // namespace brisk::train
