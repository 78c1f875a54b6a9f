import json
c = []
c += ["", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\t\t\tx", "x\t\ty", "a\r\nb\r\nc", "a\n\n\n\nb", "trailing   ", "   leading", "  both  ",
      "Hello world", "Hello, world!", "hello", "HELLO WORLD", "The quick brown fox jumps over the lazy dog.",
      "This is a test.  Two  spaces   three    four.", "multiple\n  indented\n    lines\n",
      "word\u00a0nbsp", "ideographic\u3000space", "em\u2003space and\u2009thin"]
for n in range(1, 13):
    c.append("1234567890123"[:n])
c += ["Numbers: 3.14159 and 2,718,281 and 1e-10", "x=12345678901234567890", "007 0 00 000", "v1.2.3-rc4", "٣٤٥ ١٢ digits arabic", "½ ² ³ ⅷ"]
c += ["I'm sure it's fine, we'll see, you'd know, they're here, I've done", "DON'T SHOUT, IT'S LOUD, WE'LL SEE, YOU'D, THEY'RE, I'VE, I'M",
      "don't Don't DON'T dOn'T", "'s 't 're 've 'm 'll 'd", "rock'n'roll o'clock y'all", "it’s curly’s apostrophe", "''quoted'' \"double\""]
c += ["café naïve résumé", "cafe\u0301 nai\u0308ve re\u0301sume\u0301", "Å vs A\u030a vs \u212b", "ﬁ ligature ﬀ", "Ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３",
      "e\u0301\u0302\u0303 stacked marks", "\u0301 leading combining", "ǅ ǈ Titlecase", "İstanbul ı ß ẞ", "Ελληνικά κείμενο ΣΊΣΥΦΟΣ", "Русский текст, ПРИВЕТ!"]
c += ["中文文本测试，你好世界！", "日本語のテキスト、こんにちは。カタカナ ﾊﾝｶｸ", "한국어 텍스트 안녕하세요", "한국어 decomposed: \u1112\u1161\u11ab",
      "مرحبا بالعالم، هذا نص عربي.", "שלום עולם, זה טקסט בעברית.", "नमस्ते दुनिया, यह हिंदी पाठ है।", "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง",
      "Mixed 中文 English 日本語 한국어 العربية", "ትግርኛ ኣማርኛ", "ᠮᠣᠩᠭᠣᠯ Mongolian", "Tiếng Việt có dấu"]
c += ["emoji 😀😃😄", "👨‍👩‍👧‍👦 family", "👍🏽 👍🏿 skin tones", "🇫🇷🇯🇵🇺🇸 flags", "🏳️‍🌈 rainbow", "❤️ heart with VS16", "🧑🏾‍💻 technologist", "a😀b😀c"]
c += ["zero\u200bwidth\u200cnon\u200djoiner", "\ufeffBOM at start", "soft\u00adhyphen", "ctrl\x01\x02\x07\x1b[0m\x7f", "nul\x00byte", "\u2028line sep\u2029para sep", "\u202eRTL override\u202c", "bell\x07\x08back"]
c += ["def f(x):\n    return x ** 2  # square\n", "int main() {\n\tstd::cout << \"hi\" << std::endl;\n\treturn 0;\n}\n",
      "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}", "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
      "for (auto& [k, v] : m) { if (k != v) ++n; }", "SELECT * FROM t WHERE id >= 10 AND name LIKE '%x%';", "$ ls -la | grep '\\.cpp$' > out.txt",
      "x = [i**2 for i in range(10) if i % 2 == 0]", "    indented    code    ", "#include <vector>\n#define MAX(a,b) ((a)>(b)?(a):(b))"]
c += ["https://example.com/path?q=1&r=two#frag", "mailto:someone@example.org", "http://localhost:8080/v1/chat/completions", "C:\\Users\\name\\file.txt", "user@host:~/dir$"]
c += ["a" * 1000, "abc" * 400, "supercalifragilisticexpialidocious" * 35, "x" + "y" * 1500 + "z", "🙂" * 300, "中" * 600]
c += ["!!!!!!!!", "???", "...", "…", "------", "=====>", "!!??!!", "a,b;c:d", "((()))[[]]{{}}", "~`@#$%^&*_+|", "—–-", "«»„“”‘’", "***bold***", "____"]
c += ["<|begin_of_text|>", "<|begin_of_text|>Hello", "Hello<|eot_id|>world", "a <|eot_id|> b", "x<|begin_of_text|>y<|end_of_text|>z",
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
      "word<|im_start|>word", " <|im_end|> ", "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "in<start_of_turn>side",
      "<s>", "</s>", "<s> text </s>", "a<s>b</s>c", "<unk>", "x <unk> y", "<pad>", "<bos>hello<eos>", "<|endoftext|>", "<think>\nreason\n</think>\n\nanswer",
      "<|eot_id|><|eot_id|>", "<|im_start|", "<|im_start|>>", "<<s>>", "<|EOT_ID|>"]
c += ["▁", "▁▁", "▁hello▁world", "a▁b", " ▁ ", "Ġ Ċ ĉ"]
c += ["𠀀𠀁𠀂 CJK ext B", "𪚥 rare", "\ue000\ue001 private use", "\U000f0000 plane 15 PUA", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math fraktur", "𓀀 hieroglyph", "🀄 mahjong", "\U0001d11e music"]
c += ["The year 2024 had 366 days.", "Prices: $1,234.56, €99, ¥1000, £5", "Temp: -40°C = -40°F", "mixed123abc456def", "ABCdefGHI", "CamelCaseIdentifier snake_case_name kebab-case-name",
      "A\nB\rC\r\nD\n\rE", " \t \n \r\n ", "end with newline\n", "\n\nstart with newlines", "tab\tseparated\tvalues\n1\t2\t3"]
assert len(c) >= 120, len(c)
assert len(set(c)) == len(c), [x for x in c if c.count(x) > 1]
json.dump(c, open("tests/golden/tokenizer_corpus.json", "w"), ensure_ascii=False, indent=1)
print(len(c))
