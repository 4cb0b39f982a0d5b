// Tokenizer unit tests on a tiny hand-made tokenizer.json: pre-tokenizer splits derived from the regex
// semantics, BPE merge order, added tokens, streaming decode, malformed files and the C ABI.
#include "core/error.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>
#include <imp/imp.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using imp::tok::SplitPattern;

std::vector<std::string> split(const std::string& s, SplitPattern p) {
  std::vector<std::string> out;
  for (auto [b, e] : imp::tok::pre_tokenize(s, p)) out.push_back(s.substr(b, e - b));
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenizerQwen, WordsAndSpaces) {
  auto q = SplitPattern::Qwen;
  EXPECT_EQ(split("Hello world", q), (V{"Hello", " world"}));
  EXPECT_EQ(split("a   b", q), (V{"a", "  ", " b"}));  // \s+(?!\S) leaves the last space to " b"
  EXPECT_EQ(split("a  ", q), (V{"a", "  "}));           // trailing run kept whole
  EXPECT_EQ(split(" a", q), (V{" a"}));
  EXPECT_EQ(split("\thello", q), (V{"\thello"}));        // any non-CR/LF non-letter may lead a word
  EXPECT_EQ(split("\nhello", q), (V{"\n", "hello"}));    // but not a newline
  EXPECT_EQ(split("a\xC2\xA0" "b", q), (V{"a", "\xC2\xA0" "b"}));  // NBSP is whitespace and leads the word
  EXPECT_EQ(split("a\xE3\x80\x80\xE3\x80\x80", q), (V{"a", "\xE3\x80\x80\xE3\x80\x80"}));  // U+3000 at the end
  EXPECT_EQ(split("", q), V{});
}

TEST(PreTokenizerQwen, Newlines) {
  auto q = SplitPattern::Qwen;
  EXPECT_EQ(split("a \n b", q), (V{"a", " \n", " b"}));  // \s*[\r\n]+ stops after the run's last newline
  EXPECT_EQ(split("x  \n\n  y", q), (V{"x", "  \n\n", " ", " y"}));
  EXPECT_EQ(split("\r\n\r\n", q), (V{"\r\n\r\n"}));
  EXPECT_EQ(split("!!!\n\nok", q), (V{"!!!\n\n", "ok"}));  // punctuation takes the newlines after it
  EXPECT_EQ(split("a\n", q), (V{"a", "\n"}));
  EXPECT_EQ(split("a\xE2\x80\xA8" "b", q), (V{"a", "\xE2\x80\xA8" "b"}));  // U+2028 is \s but not [\r\n]
}

TEST(PreTokenizerQwen, ContractionsAreCaseInsensitive) {
  auto q = SplitPattern::Qwen;
  EXPECT_EQ(split("don't", q), (V{"don", "'t"}));
  EXPECT_EQ(split("DON'T WE'LL", q), (V{"DON", "'T", " WE", "'LL"}));
  EXPECT_EQ(split("they'Re", q), (V{"they", "'Re"}));
  EXPECT_EQ(split("'sup", q), (V{"'s", "up"}));
  EXPECT_EQ(split("'\xC5\xBF", q), (V{"'\xC5\xBF"}));  // U+017F long s folds to s under (?i)
  EXPECT_EQ(split("x 'll", q), (V{"x", " '", "ll"}));  // the space blocks the contraction
  EXPECT_EQ(split("'x", q), (V{"'x"}));                 // not a contraction: punctuation leads the word
}

TEST(PreTokenizerQwen, NumbersPunctuationAndScripts) {
  auto q = SplitPattern::Qwen;
  EXPECT_EQ(split("123", q), (V{"1", "2", "3"}));  // one digit per piece
  EXPECT_EQ(split("1st", q), (V{"1", "st"}));
  EXPECT_EQ(split("\xC2\xB2\xE2\x85\xAB", q), (V{"\xC2\xB2", "\xE2\x85\xAB"}));  // No and Nl count as \p{N}
  EXPECT_EQ(split(" !!", q), (V{" !!"}));
  EXPECT_EQ(split("  !!", q), (V{" ", " !!"}));
  EXPECT_EQ(split("a.b", q), (V{"a", ".b"}));
  // 中文，测试。: the comma leads the next word, the final stop stands alone.
  EXPECT_EQ(split("\xE4\xB8\xAD\xE6\x96\x87\xEF\xBC\x8C\xE6\xB5\x8B\xE8\xAF\x95\xE3\x80\x82", q),
            (V{"\xE4\xB8\xAD\xE6\x96\x87", "\xEF\xBC\x8C\xE6\xB5\x8B\xE8\xAF\x95", "\xE3\x80\x82"}));
  EXPECT_EQ(split("e\xCC\x81", q), (V{"e", "\xCC\x81"}));  // a combining mark is not \p{L}: NFC matters
  EXPECT_EQ(split("\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", q), (V{"\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"}));  // emoji+tone
  EXPECT_EQ(split(std::string("a\0b", 3), q), (V{"a", std::string("\0b", 2)}));  // NUL is punctuation-like
}

TEST(PreTokenizerGpt2, Pattern) {
  auto g = SplitPattern::Gpt2;
  EXPECT_EQ(split("Hello  world", g), (V{"Hello", " ", " world"}));
  EXPECT_EQ(split("a123 45", g), (V{"a", "123", " 45"}));
  EXPECT_EQ(split("DON'T don't", g), (V{"DON", "'", "T", " don", "'t"}));  // case-sensitive
  EXPECT_EQ(split("!!\n\n", g), (V{"!!", "\n\n"}));
}

// Qwen3.5's regex: combining marks join the letter runs. The expectations are Hugging Face tokenizers' splits
// (the npm package tokenizers 0.23.2, which tools/fixtures/tokenizer/make_split_goldens.js uses); the goldens
// over tests/tokenizer/marks.txt and corpus.txt in test_tokenizer_golden.cpp check many more.
std::string u8s(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) imp::tok::utf8_append(out, uint32_t(c));
  return out;
}

std::vector<std::string> split32(std::u32string_view s, SplitPattern p) { return split(u8s(s), p); }

V v32(std::initializer_list<std::u32string_view> pieces) {
  V out;
  for (auto p : pieces) out.push_back(u8s(p));
  return out;
}

TEST(PreTokenizerQwen35, MarksJoinLetters) {
  auto m = SplitPattern::Qwen35, q = SplitPattern::Qwen;
  EXPECT_EQ(split32(U"e\u0301", m), v32({U"e\u0301"}));
  EXPECT_EQ(split32(U"e\u0301", q), v32({U"e", U"\u0301"}));
  EXPECT_EQ(split32(U"cafe\u0301s na\u0308ive", m), v32({U"cafe\u0301s", U" na\u0308ive"}));
  EXPECT_EQ(split32(U"cafe\u0301s na\u0308ive", q), v32({U"cafe", U"\u0301s", U" na", U"\u0308ive"}));
  // Devanagari: vowel signs (Mc, Mn) and the virama (Mn) stay inside the word.
  EXPECT_EQ(split32(U"\u0939\u093f\u0928\u094d\u0926\u0940 \u0935\u093f\u0915\u093f", m),
            v32({U"\u0939\u093f\u0928\u094d\u0926\u0940", U" \u0935\u093f\u0915\u093f"}));
  EXPECT_EQ(split32(U"\u0939\u093f\u0928\u094d\u0926\u0940", q),
            v32({U"\u0939", U"\u093f\u0928", U"\u094d\u0926", U"\u0940"}));
  // Thai words with their vowel and tone marks; Thai digits stay one per piece.
  EXPECT_EQ(split32(U"\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u0e51\u0e52", m),
            v32({U"\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", U" ", U"\u0e51", U"\u0e52"}));
  // Arabic harakat; a shadda after an Arabic-Indic digit is a lone mark (\p{N} takes one digit).
  EXPECT_EQ(split32(U"\u0628\u0650\u0633\u0652\u0645\u0650 \u0663\u0651", m),
            v32({U"\u0628\u0650\u0633\u0652\u0645\u0650", U" ", U"\u0663", U"\u0651"}));
  // Hebrew niqqud.
  EXPECT_EQ(split32(U"\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0", m), v32({U"\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0"}));
  EXPECT_EQ(split32(U"\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0", q),
            v32({U"\u05d1", U"\u05bc\u05b0", U"\u05e8", U"\u05b5\u05d0"}));
}

TEST(PreTokenizerQwen35, MarksElsewhere) {
  auto m = SplitPattern::Qwen35;
  // A mark is never punctuation: it leaves [^\s\p{L}\p{M}\p{N}]+ and starts (or, after one, joins) a word.
  EXPECT_EQ(split32(U"a\u20dd.", m), v32({U"a\u20dd", U"."}));  // enclosing circle (Me)
  EXPECT_EQ(split32(U"!\u0301", m), v32({U"!\u0301"}));         // punctuation leads the "word" of one mark
  EXPECT_EQ(split32(U"\u0301abc", m), v32({U"\u0301abc"}));
  EXPECT_EQ(split32(U"\u0301 ", m), v32({U"\u0301", U" "}));
  EXPECT_EQ(split32(U"a  \u0301b", m), v32({U"a", U" ", U" \u0301b"}));
  EXPECT_EQ(split32(U"x\n\u0301y", m), v32({U"x", U"\n", U"\u0301y"}));  // a newline does not lead a word
  EXPECT_EQ(split32(U"1\u0301 2", m), v32({U"1", U"\u0301", U" ", U"2"}));
  // Contractions come first: a mark after one is a word of its own, a mark before the apostrophe joins the word.
  EXPECT_EQ(split32(U"'s\u0301", m), v32({U"'s", U"\u0301"}));
  EXPECT_EQ(split32(U"don\u0301't", m), v32({U"don\u0301", U"'t"}));
  EXPECT_EQ(split32(U"don\u0301't", SplitPattern::Qwen), v32({U"don", U"\u0301'", U"t"}));
  // Emoji: the variation selector (Mn) joins the symbol before it, as punctuation under Qwen's regex does; the
  // keycap's selector and enclosing mark (Me) follow a digit, which stands alone.
  EXPECT_EQ(split32(U"\u2764\ufe0f 1\ufe0f\u20e3", m), v32({U"\u2764\ufe0f", U" ", U"1", U"\ufe0f\u20e3"}));
}

TEST(PreTokenizerQwen35, SameAsQwenWithoutMarks) {
  const char* texts[] = {"Hello world", "a   b", "x  \n\n  y", "DON'T WE'LL 'sup", "123 1st", " !!", "a.b",
                         "\r\n\r\n", "a\xC2\xA0" "b", "\xE4\xB8\xAD\xE6\x96\x87\xEF\xBC\x8C", "'\xC5\xBF"};
  for (const char* t : texts) EXPECT_EQ(split(t, SplitPattern::Qwen35), split(t, SplitPattern::Qwen)) << t;
}

TEST(PreTokenizer, PatternStrings) {
  EXPECT_EQ(imp::tok::pattern_from_regex(
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            SplitPattern::Qwen);
  EXPECT_EQ(imp::tok::pattern_from_regex(
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+"
                "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            SplitPattern::Qwen35);
  // llama.cpp's spelling of the same regex (contractions as [sS] classes) is not the tokenizer.json string.
  EXPECT_EQ(imp::tok::pattern_from_regex(
                "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|"
                "\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            SplitPattern::None);
  EXPECT_EQ(imp::tok::pattern_from_regex("\\s+"), SplitPattern::None);
}

TEST(Unicode, CharClasses) {
  using imp::tok::CharClass;
  using imp::tok::char_class;
  EXPECT_EQ(char_class('a'), CharClass::Letter);
  EXPECT_EQ(char_class(0x0301), CharClass::Mark);   // combining acute (Mn)
  EXPECT_EQ(char_class(0x093E), CharClass::Mark);   // Devanagari vowel sign aa (Mc)
  EXPECT_EQ(char_class(0x20DD), CharClass::Mark);   // combining enclosing circle (Me)
  EXPECT_EQ(char_class(0xFE0F), CharClass::Mark);   // variation selector 16 (Mn)
  EXPECT_EQ(char_class(0xE0100), CharClass::Mark);  // variation selector 17 (Mn)
  EXPECT_EQ(char_class(0x200D), CharClass::Other);  // ZWJ is Cf
  EXPECT_EQ(char_class(0x1F3FD), CharClass::Other); // skin tone modifier is Sk
  EXPECT_EQ(char_class(0x0E51), CharClass::Number);
  EXPECT_EQ(char_class(0x3000), CharClass::Space);
}

TEST(Unicode, Utf8AndNfc) {
  using imp::tok::utf8_first_invalid;
  EXPECT_EQ(utf8_first_invalid("abc\xC3\xA9"), std::string::npos);
  EXPECT_EQ(utf8_first_invalid("ab\xC0\x80"), 2u);           // overlong
  EXPECT_EQ(utf8_first_invalid("\xED\xA0\x80"), 0u);         // surrogate
  EXPECT_EQ(utf8_first_invalid("x\xF4\x90\x80\x80"), 1u);    // > U+10FFFF
  EXPECT_EQ(utf8_first_invalid("x\xE4\xB8"), 1u);            // truncated
  EXPECT_EQ(imp::tok::nfc("e\xCC\x81"), "\xC3\xA9");
  EXPECT_EQ(imp::tok::nfc("\xE2\x84\xAB"), "\xC3\x85");  // Angstrom sign -> A with ring
  EXPECT_EQ(imp::tok::nfc(std::string("a\0e\xCC\x81", 5)), std::string("a\0\xC3\xA9", 4));
  using imp::tok::utf8_incomplete_tail;
  EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F\x98", 4), 3u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F\x98\x80", 5), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE4", 2), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE0\x80", 3), 0u);  // can never complete (overlong): not held
  EXPECT_EQ(utf8_incomplete_tail("\xC3", 1), 1u);
  EXPECT_EQ(utf8_incomplete_tail("\xFF", 1), 0u);
}

// ---- a tiny byte-level tokenizer ----------------------------------------------------------------------------

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

struct TinySpec {
  std::string model_type = "\"BPE\"";
  std::string extra_merge;  // appended to the merges list
  std::string normalizer = "{\"type\": \"NFC\"}";
  std::string pre_tokenizer =
      "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
      "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+"
      "[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
      "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}]}";
  std::string decoder = "{\"type\": \"ByteLevel\"}";
  std::string added_extra;  // appended to added_tokens
  bool drop_model = false;
};

// Ids 0..255: the bytes in order; 256 "he", 257 "ll", 258 "hell", 259 "hello", 260 "Ġw"; added tokens
// 300 "<|end|>" (special), 301 "<x>" (not special).
std::string tiny_json(const TinySpec& s = TinySpec()) {
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    vocab += json_str(imp::tok::byte_to_unicode_utf8(uint8_t(b))) + ": " + std::to_string(b) + ", ";
  }
  vocab += "\"he\": 256, \"ll\": 257, \"hell\": 258, \"hello\": 259, \"\xC4\xA0w\": 260";
  std::string merges = "\"h e\", [\"l\", \"l\"], \"he ll\", [\"hell\", \"o\"], \"\xC4\xA0 w\"" + s.extra_merge;
  std::string model = "\"model\": {\"type\": " + s.model_type + ", \"dropout\": null, \"unk_token\": null, "
                      "\"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": false, "
                      "\"byte_fallback\": false, \"ignore_merges\": false, \"vocab\": {" + vocab + "}, "
                      "\"merges\": [" + merges + "]}";
  std::string added =
      "[{\"id\": 300, \"content\": \"<|end|>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
      "\"normalized\": false, \"special\": true}, {\"id\": 301, \"content\": \"<x>\", \"normalized\": false, "
      "\"special\": false}" + s.added_extra + "]";
  std::string out = "{\"version\": \"1.0\", \"added_tokens\": " + added + ", \"normalizer\": " + s.normalizer +
                    ", \"pre_tokenizer\": " + s.pre_tokenizer + ", \"post_processor\": null, \"decoder\": " +
                    s.decoder;
  if (!s.drop_model) out += ", " + model;
  return out + "}";
}

std::unique_ptr<imp::Tokenizer> tiny(const TinySpec& s = TinySpec()) {
  return imp::Tokenizer::from_json(tiny_json(s), "tiny.json");
}

using Ids = std::vector<int32_t>;

TEST(Tokenizer, MergesByRank) {
  auto t = tiny();
  EXPECT_EQ(t->n_vocab(), 302);
  EXPECT_EQ(t->encode("hello", true), (Ids{259}));
  EXPECT_EQ(t->encode("hellhello", true), (Ids{258, 259}));
  EXPECT_EQ(t->encode("hello world", true), (Ids{259, 260, 'o', 'r', 'l', 'd'}));
  EXPECT_EQ(t->encode("lll", true), (Ids{257, 'l'}));  // equal ranks merge leftmost first
  EXPECT_EQ(t->encode("", true), Ids{});
}

TEST(Tokenizer, AddedTokens) {
  auto t = tiny();
  EXPECT_EQ(t->encode("he<|end|>he", true), (Ids{256, 300, 256}));
  // Not parsed: the special token's text is tokenized like any other text.
  EXPECT_EQ(t->encode("<|end|>", false), (Ids{'<', '|', 'e', 'n', 'd', '|', '>'}));
  // A non-special added token is always matched.
  EXPECT_EQ(t->encode("a<x>b", false), (Ids{'a', 301, 'b'}));
  EXPECT_EQ(t->encode("a<x>b", true), (Ids{'a', 301, 'b'}));
  EXPECT_EQ(t->token_id("<|end|>"), 300);
  EXPECT_EQ(t->token_id("hello"), 259);
  EXPECT_EQ(t->token_id(" w"), 260);
  EXPECT_EQ(t->token_id("nope"), -1);
  EXPECT_TRUE(t->is_special(300));
  EXPECT_FALSE(t->is_special(301));
}

TEST(Tokenizer, NfcBeforeSplitAndRoundTrip) {
  auto t = tiny();
  std::string text = "e\xCC\x81 <|end|> \xF0\x9F\x98\x80 \xE4\xB8\xAD hello";
  Ids ids = t->encode(text, true);
  EXPECT_EQ(ids.front(), 0xC3);  // NFC made U+00E9 first: bytes C3 A9
  EXPECT_EQ(t->decode(ids.data(), ids.size(), false), imp::tok::nfc(text));
  std::string skipped = t->decode(ids.data(), ids.size(), true);
  EXPECT_EQ(skipped.find("<|end|>"), std::string::npos);
  EXPECT_EQ(t->piece(260), " w");
  EXPECT_EQ(t->piece(0xE4), "\xE4");  // a lone byte, not valid UTF-8 by itself
  EXPECT_EQ(t->piece(299), "");       // an id without a token
  EXPECT_THROW(t->piece(302), imp::Error);
  EXPECT_THROW(t->piece(-1), imp::Error);
}

TEST(Tokenizer, InvalidUtf8IsRejected) {
  auto t = tiny();
  try {
    t->encode("ok\xFFno", true);
    FAIL() << "no error";
  } catch (const imp::Error& e) {
    EXPECT_EQ(e.status(), IMP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("byte 2"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, StreamDecoderHoldsBackSplitCharacters) {
  auto t = tiny();
  std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80z";  // byte tokens only: characters arrive split
  Ids ids = t->encode(text, true);
  ASSERT_EQ(ids.size(), text.size());
  imp::StreamDecoder s(*t);
  std::vector<std::string> outs;
  for (int32_t id : ids) outs.push_back(s.push(id));
  EXPECT_EQ(outs, (V{"a", "", "\xC3\xA9", "", "", "\xE4\xB8\xAD", "", "", "", "\xF0\x9F\x98\x80", "z"}));
  EXPECT_EQ(s.flush(), "");
  // A sequence cut off by the end of the stream is released by flush(); one that cannot complete is passed on.
  imp::StreamDecoder s2(*t);
  EXPECT_EQ(s2.push(0xE4), "");
  EXPECT_EQ(s2.push('x'), "\xE4x");
  EXPECT_EQ(s2.push(0xF0), "");
  EXPECT_EQ(s2.flush(), "\xF0");
}

// ---- malformed files ----------------------------------------------------------------------------------------

void expect_bad(const std::string& json, const std::string& what) {
  try {
    imp::Tokenizer::from_json(json, "bad.json");
    ADD_FAILURE() << "no error; expected " << what;
  } catch (const imp::Error& e) {
    EXPECT_EQ(e.status(), IMP_ERR_TOKENIZER) << e.what();
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.json: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

TEST(TokenizerErrors, MalformedFiles) {
  expect_bad("{\"model\": ", "malformed JSON");
  expect_bad("{\"model\": {}} x", "malformed JSON");
  expect_bad("{\"a\": \"x\ty\"}", "no \"model\"");  // the JSON reader lets a raw tab through; the file still fails
  expect_bad(std::string(1000, '[') + std::string(1000, ']'), "not a JSON object");  // deep nesting: no recursion
  expect_bad("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 1.5}, \"merges\": []}}", "not an integer");
  expect_bad("[1, 2]", "not a JSON object");
  TinySpec s;
  s.drop_model = true;
  expect_bad(tiny_json(s), "no \"model\"");
  s = TinySpec();
  s.model_type = "\"WordPiece\"";
  expect_bad(tiny_json(s), "model type \"WordPiece\"");
  s = TinySpec();
  s.extra_merge = ", \"hello\"";
  expect_bad(tiny_json(s), "merges[5]");
  s.extra_merge = ", [\"h\"]";
  expect_bad(tiny_json(s), "merges[5]");
  s.extra_merge = ", 7";
  expect_bad(tiny_json(s), "merges[5]");
  s.extra_merge = ", \"h zz\"";
  expect_bad(tiny_json(s), "\"zz\", which is not in the vocab");
  s.extra_merge = ", \"h a\"";  // both known, but "ha" is not a token
  expect_bad(tiny_json(s), "\"ha\", which is not in the vocab");
  s = TinySpec();
  s.pre_tokenizer = "{\"type\": \"Whitespace\"}";
  expect_bad(tiny_json(s), "pre_tokenizer type \"Whitespace\"");
  s.pre_tokenizer = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                    "\"\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\"}]}";
  expect_bad(tiny_json(s), "pre_tokenizer Split regex is not one libimp implements");
  s.pre_tokenizer = "null";
  expect_bad(tiny_json(s), "no ByteLevel");
  s = TinySpec();
  s.normalizer = "{\"type\": \"NFKC\"}";
  expect_bad(tiny_json(s), "normalizer type \"NFKC\"");
  s.normalizer = "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Lowercase\"}]}";
  expect_bad(tiny_json(s), "normalizer type \"Lowercase\"");
  s = TinySpec();
  s.decoder = "{\"type\": \"WordPiece\"}";
  expect_bad(tiny_json(s), "decoder type");
  s = TinySpec();
  s.added_extra = ", {\"id\": 302, \"content\": \"<y>\", \"single_word\": true}";
  expect_bad(tiny_json(s), "single_word");
  s.added_extra = ", {\"id\": -4, \"content\": \"<y>\"}";
  expect_bad(tiny_json(s), "out of range");
}

// Every prefix of a valid file is refused with IMP_ERR_TOKENIZER, never a crash.
TEST(TokenizerErrors, TruncatedFiles) {
  std::string json = tiny_json();
  for (size_t n = 0; n < json.size(); n += 13) {
    try {
      imp::Tokenizer::from_json(json.substr(0, n), "cut.json");
      ADD_FAILURE() << "prefix of " << n << " bytes accepted";
    } catch (const imp::Error& e) {
      EXPECT_EQ(e.status(), IMP_ERR_TOKENIZER) << e.what();
    }
  }
}

// Random code points from every plane and random bytes: valid text round-trips to its NFC, invalid text is
// refused as an argument error.
TEST(Tokenizer, RandomInput) {
  auto t = tiny();
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    int len = int(rng() % 40);
    for (int i = 0; i < len; ++i) {
      uint32_t cp = rng() % 4 == 0 ? rng() % 0x80 : rng() % 0x110000;
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      imp::tok::utf8_append(text, cp);
    }
    Ids ids = t->encode(text, round % 2 == 0);
    EXPECT_EQ(t->decode(ids.data(), ids.size(), false), imp::tok::nfc(text));
    std::string bytes;
    for (int i = 0; i < len; ++i) bytes += char(rng() % 256);
    bool valid = imp::tok::utf8_first_invalid(bytes) == std::string::npos;
    try {
      t->encode(bytes, true);
      EXPECT_TRUE(valid);
    } catch (const imp::Error& e) {
      EXPECT_FALSE(valid);
      EXPECT_EQ(e.status(), IMP_ERR_INVALID_ARGUMENT);
    }
  }
}

TEST(TokenizerErrors, NormalizerVariantsAccepted) {
  TinySpec s;
  s.normalizer = "null";
  EXPECT_EQ(tiny(s)->encode("e\xCC\x81", true), (Ids{'e', 0xCC, 0x81}));  // no NFC
  s.normalizer = "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]}";
  EXPECT_EQ(tiny(s)->encode("e\xCC\x81", true), (Ids{0xC3, 0xA9}));
}

// Qwen3.5's tokenizer.json Split regex is recognised by its exact text.
TEST(Tokenizer, Qwen35SplitRegexLoads) {
  TinySpec s;
  const std::string qwen3 = R"(\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+)";  // JSON-escaped
  const std::string qwen35 = R"(\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+)";
  size_t at = s.pre_tokenizer.find(qwen3);
  ASSERT_NE(at, std::string::npos);
  s.pre_tokenizer.replace(at, qwen3.size(), qwen35);
  auto t = tiny(s);
  EXPECT_EQ(t->encode("hello world", true), (Ids{259, 260, 'o', 'r', 'l', 'd'}));
  std::string text = "x\xCC\x81 \xE0\xA4\xB9\xE0\xA4\xBF";  // x + U+0301, Devanagari hi: not changed by NFC
  Ids ids = t->encode(text, true);
  EXPECT_EQ(t->decode(ids.data(), ids.size(), false), text);
  // One character off is another regex, refused by name.
  const std::string mark = R"(\\p{M}]+)";
  s.pre_tokenizer.replace(s.pre_tokenizer.find(mark), mark.size(), R"(\\p{Mn}]+)");
  expect_bad(tiny_json(s), "pre_tokenizer Split regex is not one libimp implements");
}

// ---- the C ABI ----------------------------------------------------------------------------------------------

class TokenizerApi : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("imp_tok_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "tokenizer.json").string();
    std::ofstream(path_) << tiny_json();
    ASSERT_EQ(imp_tokenizer_load(&tok_, dir_.string().c_str()), IMP_OK) << imp_last_error();
  }
  void TearDown() override {
    imp_tokenizer_free(tok_);
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::string path_;
  imp_tokenizer* tok_ = nullptr;
};

TEST_F(TokenizerApi, Load) {
  imp_tokenizer* t = reinterpret_cast<imp_tokenizer*>(0x1);
  EXPECT_EQ(imp_tokenizer_load(&t, path_.c_str()), IMP_OK);
  EXPECT_STREQ(imp_last_error(), "");
  imp_tokenizer_free(t);
  EXPECT_EQ(imp_tokenizer_load(nullptr, path_.c_str()), IMP_ERR_NULL_ARGUMENT);
  t = reinterpret_cast<imp_tokenizer*>(0x1);
  EXPECT_EQ(imp_tokenizer_load(&t, nullptr), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(t, nullptr);
  EXPECT_EQ(imp_tokenizer_load(&t, (dir_ / "missing").string().c_str()), IMP_ERR_NOT_FOUND);
  std::filesystem::create_directories(dir_ / "empty");
  EXPECT_EQ(imp_tokenizer_load(&t, (dir_ / "empty").string().c_str()), IMP_ERR_TOKENIZER);
  EXPECT_NE(std::string(imp_last_error()).find("no tokenizer.json"), std::string::npos) << imp_last_error();
  std::string bad = (dir_ / "bad.json").string();
  std::ofstream(bad) << "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [\"a b\"]}}";
  EXPECT_EQ(imp_tokenizer_load(&t, bad.c_str()), IMP_ERR_TOKENIZER);
  EXPECT_EQ(std::string(imp_last_error()).rfind(bad + ": ", 0), 0u) << imp_last_error();
  std::ofstream(bad) << "not json";
  EXPECT_EQ(imp_tokenizer_load(&t, bad.c_str()), IMP_ERR_TOKENIZER);
  EXPECT_EQ(t, nullptr);
  imp_tokenizer_free(nullptr);
  EXPECT_EQ(imp_tokenizer_n_vocab(nullptr), -1);
  EXPECT_EQ(imp_tokenizer_n_vocab(tok_), 302);
}

TEST_F(TokenizerApi, Tokenize) {
  const char* text = "hello<|end|>";
  size_t n = 99;
  EXPECT_EQ(imp_tokenize(tok_, text, strlen(text), 1, nullptr, 0, &n), IMP_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 2u);
  imp_token ids[2] = {-7, -7};
  EXPECT_EQ(imp_tokenize(tok_, text, strlen(text), 1, ids, 1, &n), IMP_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(ids[0], -7);  // nothing written when it does not all fit
  EXPECT_EQ(imp_tokenize(tok_, text, strlen(text), 1, ids, 2, &n), IMP_OK);
  EXPECT_STREQ(imp_last_error(), "");
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(ids[0], 259);
  EXPECT_EQ(ids[1], 300);
  EXPECT_EQ(imp_tokenize(tok_, text, strlen(text), 0, nullptr, 0, &n), IMP_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 8u);  // "hello" + 7 bytes of "<|end|>" as text
  EXPECT_EQ(imp_tokenize(tok_, nullptr, 0, 1, nullptr, 0, &n), IMP_OK);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(imp_tokenize(nullptr, text, 5, 1, ids, 2, &n), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_tokenize(tok_, nullptr, 5, 1, ids, 2, &n), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_tokenize(tok_, text, 5, 1, nullptr, 2, &n), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_tokenize(tok_, text, 5, 1, ids, 2, nullptr), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_tokenize(tok_, "a\xC3", 2, 1, ids, 2, &n), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(n, 0u);
  EXPECT_NE(std::string(imp_last_error()).find("UTF-8"), std::string::npos);
  EXPECT_EQ(imp_tokenize(tok_, "a\0b", 3, 1, ids, 2, &n), IMP_ERR_BUFFER_TOO_SMALL);  // NUL is text
  EXPECT_EQ(n, 3u);
}

TEST_F(TokenizerApi, DetokenizeAndPieces) {
  imp_token ids[3] = {259, 300, 260};
  char buf[32];
  size_t n = 99;
  EXPECT_EQ(imp_detokenize(tok_, ids, 3, 0, nullptr, 0, &n), IMP_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 14u);
  EXPECT_EQ(imp_detokenize(tok_, ids, 3, 0, buf, 13, &n), IMP_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(imp_detokenize(tok_, ids, 3, 0, buf, sizeof buf, &n), IMP_OK);
  EXPECT_EQ(std::string(buf, n), "hello<|end|> w");
  EXPECT_EQ(imp_detokenize(tok_, ids, 3, 1, buf, sizeof buf, &n), IMP_OK);
  EXPECT_EQ(std::string(buf, n), "hello w");
  imp_token bad[2] = {1, 302};
  EXPECT_EQ(imp_detokenize(tok_, bad, 2, 0, buf, sizeof buf, &n), IMP_ERR_TOKEN_OUT_OF_RANGE);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(imp_detokenize(tok_, nullptr, 0, 0, nullptr, 0, &n), IMP_OK);
  EXPECT_EQ(imp_detokenize(nullptr, ids, 3, 0, buf, sizeof buf, &n), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_detokenize(tok_, nullptr, 3, 0, buf, sizeof buf, &n), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_detokenize(tok_, ids, 3, 0, buf, sizeof buf, nullptr), IMP_ERR_NULL_ARGUMENT);

  EXPECT_EQ(imp_token_to_piece(tok_, 260, buf, sizeof buf, &n), IMP_OK);
  EXPECT_EQ(std::string(buf, n), " w");
  EXPECT_EQ(imp_token_to_piece(tok_, 260, buf, 1, &n), IMP_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(imp_token_to_piece(tok_, -1, buf, sizeof buf, &n), IMP_ERR_TOKEN_OUT_OF_RANGE);
  EXPECT_EQ(imp_token_to_piece(nullptr, 1, buf, sizeof buf, &n), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_token_to_piece(tok_, 0xE4, buf, sizeof buf, &n), IMP_OK);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(imp_utf8_incomplete_tail(buf, n), 1u);
  EXPECT_EQ(imp_utf8_incomplete_tail(nullptr, 0), 0u);
}

TEST_F(TokenizerApi, TokenIds) {
  imp_token id = 0;
  EXPECT_EQ(imp_tokenizer_token_id(tok_, "<|end|>", &id), IMP_OK);
  EXPECT_EQ(id, 300);
  EXPECT_EQ(imp_tokenizer_is_special(tok_, id), 1);
  EXPECT_EQ(imp_tokenizer_token_id(tok_, "<x>", &id), IMP_OK);
  EXPECT_EQ(imp_tokenizer_is_special(tok_, id), 0);
  EXPECT_EQ(imp_tokenizer_token_id(tok_, "nope", &id), IMP_ERR_NOT_FOUND);
  EXPECT_EQ(id, -1);
  EXPECT_EQ(imp_tokenizer_token_id(nullptr, "x", &id), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_tokenizer_token_id(tok_, nullptr, &id), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_tokenizer_token_id(tok_, "x", nullptr), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_tokenizer_is_special(nullptr, 300), 0);
  EXPECT_EQ(imp_tokenizer_is_special(tok_, 100000), 0);
}

}  // namespace
