// The tokenizer from GGUF metadata (tokenizer.ggml.*, llama.cpp's layout) against the tokenizer.json path:
//   - models/imp-demo converted by imp::gguf::convert_hf_dir (Q8_0, into a temporary directory) carries its
//     tokenizer; loaded from the .gguf (Tokenizer::load and the C ABI) it gives the Hugging Face goldens over
//     tests/tokenizer/corpus.txt (special tokens parsed and not) and the ids, pieces and specials of the
//     tokenizer.json tokenizer.
//   - The real Qwen3 tokenizer.json (when fetched, see tests/tokenizer/README.md) written as GGUF arrays and read
//     back gives its goldens too.
//   - NFC: the corpus has chunks that are not NFC, and Hugging Face's ids for them decode to the NFC text, so a
//     tokenizer that does not normalize (llama.cpp's) cannot give them; "qwen2" implies NFC here.
//   - "qwen35" selects Qwen3.5's split (combining marks join letter runs), also after NFC.
//   - Malformed metadata (no tokens, merges naming unknown tokens, unknown pre / model / token types, mistyped
//     keys, no tokenizer at all) is IMP_ERR_TOKENIZER through imp_tokenizer_load.
#include <imp/imp.h>

#include "core/error.h"
#include "gguf/convert.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "support/tiny_model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_test_util.h"
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using imp::test::TempDir;
using namespace tokenizer_test;
namespace gg = imp::gguf;

namespace {

using Ids = std::vector<int32_t>;

const std::string kData = std::string(IMP_SOURCE_DIR) + "/tests/tokenizer/";
const std::string kDemo = std::string(IMP_SOURCE_DIR) + "/models/imp-demo";

size_t golden_mismatches(const imp::Tokenizer& tok, const std::string& name, bool parse_special) {
  std::vector<std::string> chunks = corpus_chunks(read_all(kData + "corpus.txt"));
  std::vector<Ids> golden;
  EXPECT_TRUE(read_golden(kData + name + (parse_special ? ".special" : ".plain") + ".ids.bin", &golden));
  EXPECT_EQ(golden.size(), chunks.size());
  size_t bad = 0;
  for (size_t i = 0; i < chunks.size() && i < golden.size(); ++i) {
    if (tok.encode(chunks[i], parse_special) != golden[i] && ++bad <= 3)
      ADD_FAILURE() << name << (parse_special ? " special" : " plain") << ": chunk " << i << " differs";
  }
  return bad;
}

// One converted demo GGUF for the whole program (conversion takes a moment).
class ImpDemoGguf : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!file_exists(kDemo + "/tokenizer.json") || !file_exists(kData + "imp-demo.special.ids.bin")) return;
    dir_ = new TempDir();
    path_ = new std::string(dir_->file("imp-demo-q8_0.gguf"));
    gg::convert_hf_dir(kDemo, *path_, "q8_0");
    from_gguf_ = imp::Tokenizer::load(*path_).release();
    from_json_ = imp::Tokenizer::load(kDemo).release();
  }
  static void TearDownTestSuite() {
    delete from_gguf_;
    delete from_json_;
    delete path_;
    delete dir_;
  }
  void SetUp() override {
    if (!from_gguf_) GTEST_SKIP() << "no " << kDemo << "/tokenizer.json or no imp-demo goldens";
  }
  static TempDir* dir_;
  static std::string* path_;
  static imp::Tokenizer* from_gguf_;
  static imp::Tokenizer* from_json_;
};
TempDir* ImpDemoGguf::dir_ = nullptr;
std::string* ImpDemoGguf::path_ = nullptr;
imp::Tokenizer* ImpDemoGguf::from_gguf_ = nullptr;
imp::Tokenizer* ImpDemoGguf::from_json_ = nullptr;

TEST_F(ImpDemoGguf, MetadataIsLlamaCppLayout) {
  std::unique_ptr<gg::File> f = gg::File::open(*path_);
  ASSERT_TRUE(f->find("tokenizer.ggml.model"));
  EXPECT_EQ(f->find("tokenizer.ggml.model")->str, "gpt2");
  EXPECT_EQ(f->find("tokenizer.ggml.pre")->str, "qwen2");
  const gg::Value* tokens = f->find("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->elem, gg::ValueType::STRING);
  EXPECT_EQ(tokens->items.size(), 8000u);  // config vocab_size
  EXPECT_EQ(tokens->items[7997].str, "<|endoftext|>");
  EXPECT_EQ(tokens->items[220].str, "\xC4\xA0");  // "Ġ": byte-level form
  const gg::Value* types = f->find("tokenizer.ggml.token_type");
  ASSERT_TRUE(types);
  EXPECT_EQ(types->elem, gg::ValueType::I32);
  EXPECT_EQ(types->int_at(0), 1);
  EXPECT_EQ(types->int_at(7997), 3);
  EXPECT_EQ(types->int_at(7999), 3);
  const gg::Value* merges = f->find("tokenizer.ggml.merges");
  ASSERT_TRUE(merges);
  EXPECT_EQ(merges->items.size(), 7741u);
  EXPECT_EQ(merges->items[0].str, "\xC4\xA0 \xC4\xA0");  // "Ġ Ġ"
  EXPECT_EQ(f->find("tokenizer.ggml.eos_token_id")->as_int(), 7997);
  EXPECT_EQ(f->find("tokenizer.ggml.padding_token_id")->as_int(), 7997);
  EXPECT_EQ(f->find("tokenizer.ggml.add_bos_token")->u, 0u);
  EXPECT_FALSE(f->find("tokenizer.ggml.bos_token_id"));  // bos_token is null
}

TEST_F(ImpDemoGguf, MatchesHuggingFaceGoldens) {
  EXPECT_EQ(golden_mismatches(*from_gguf_, "imp-demo", true), 0u);
  EXPECT_EQ(golden_mismatches(*from_gguf_, "imp-demo", false), 0u);
}

TEST_F(ImpDemoGguf, EqualsTokenizerJson) {
  EXPECT_EQ(from_gguf_->n_vocab(), from_json_->n_vocab());
  for (int32_t id = 0; id < from_json_->n_vocab(); ++id) {
    ASSERT_EQ(from_gguf_->piece(id), from_json_->piece(id)) << id;
    ASSERT_EQ(from_gguf_->is_special(id), from_json_->is_special(id)) << id;
  }
  std::vector<std::string> chunks = corpus_chunks(read_all(kData + "corpus.txt"));
  size_t bad = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (bool special : {true, false}) {
      if (from_gguf_->encode(chunks[i], special) != from_json_->encode(chunks[i], special) && ++bad <= 3)
        ADD_FAILURE() << "chunk " << i << (special ? " special" : " plain");
    }
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(from_gguf_->encode("Hello, world!", true), (Ids{6329, 11, 2936, 0}));
  EXPECT_EQ(from_gguf_->encode("<|im_start|>user\nhi<|im_end|>", true), (Ids{7998, 2383, 198, 3325, 7999}));
  EXPECT_EQ(from_gguf_->token_id("<|im_end|>"), 7999);
}

TEST_F(ImpDemoGguf, CApiLoadsGguf) {
  imp_tokenizer* t = nullptr;
  ASSERT_EQ(imp_tokenizer_load(&t, path_->c_str()), IMP_OK) << imp_last_error();
  EXPECT_EQ(imp_tokenizer_n_vocab(t), 8000);
  const char* text = "<|im_start|>user\nhi<|im_end|>";
  imp_token ids[16];
  size_t n = 0;
  ASSERT_EQ(imp_tokenize(t, text, strlen(text), 1, ids, 16, &n), IMP_OK);
  EXPECT_EQ(Ids(ids, ids + n), (Ids{7998, 2383, 198, 3325, 7999}));
  EXPECT_EQ(imp_tokenizer_is_special(t, 7999), 1);
  imp_tokenizer_free(t);
  // The directory still means its tokenizer.json.
  ASSERT_EQ(imp_tokenizer_load(&t, kDemo.c_str()), IMP_OK) << imp_last_error();
  imp_tokenizer_free(t);
}

// Hugging Face normalizes with NFC before splitting: for the corpus's non-NFC chunks its ids decode to the NFC
// text, not to the input, so no tokenizer that skips normalization (llama.cpp's BPE path) can reproduce them.
TEST_F(ImpDemoGguf, GoldensRequireNfc) {
  std::vector<std::string> chunks = corpus_chunks(read_all(kData + "corpus.txt"));
  std::vector<Ids> golden;
  ASSERT_TRUE(read_golden(kData + "imp-demo.special.ids.bin", &golden));
  size_t non_nfc = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    std::string norm = imp::tok::nfc(chunks[i]);
    if (norm == chunks[i]) continue;
    ++non_nfc;
    std::string decoded = from_gguf_->decode(golden[i].data(), golden[i].size(), false);
    EXPECT_EQ(decoded, norm) << "chunk " << i;
    EXPECT_NE(decoded, chunks[i]) << "chunk " << i;
  }
  EXPECT_GT(non_nfc, 0u);
}

// The real Qwen3 tokenizer written as GGUF arrays (padded to Qwen3's 151936) and read back.
TEST(Qwen3Gguf, ArraysRoundTripToGoldens) {
  std::string path = qwen3_path();
  if (!file_exists(path)) GTEST_SKIP() << "no Qwen3 tokenizer.json at " << path;
  std::unique_ptr<imp::Tokenizer> json = imp::Tokenizer::load(path);
  imp::GgufVocab v = json->gguf_vocab(151936);
  EXPECT_EQ(v.tokens.size(), 151936u);
  EXPECT_EQ(v.types[151645], imp::kGgufTokenControl);      // <|im_end|>
  EXPECT_EQ(v.types[151667], imp::kGgufTokenUserDefined);  // <think>: added, not special
  EXPECT_EQ(v.types[151935], imp::kGgufTokenUnused);
  // Through a file, as the loader reads it.
  TempDir dir;
  gg::Writer w;
  w.add_string("tokenizer.ggml.model", v.model);
  w.add_string("tokenizer.ggml.pre", v.pre);
  w.add_string_array("tokenizer.ggml.tokens", v.tokens);
  w.add_i32_array("tokenizer.ggml.token_type", v.types);
  w.add_string_array("tokenizer.ggml.merges", v.merges);
  w.write(dir.file("qwen3-vocab.gguf"));
  std::unique_ptr<imp::Tokenizer> g = imp::Tokenizer::load(dir.file("qwen3-vocab.gguf"));
  EXPECT_EQ(g->n_vocab(), 151936);
  EXPECT_EQ(g->piece(151935), "");
  EXPECT_EQ(golden_mismatches(*g, "qwen3", true), 0u);
  EXPECT_EQ(golden_mismatches(*g, "qwen3", false), 0u);
  EXPECT_FALSE(g->is_special(151667));
  EXPECT_TRUE(g->is_special(151645));
}

// A small valid vocabulary: single characters, one merge, one control and one user-defined token.
struct Small {
  std::string model = "gpt2", pre = "qwen2";
  std::vector<std::string> tokens = {"a", "b", "ab", "\xC4\xA0", "<|x|>", "<y>", "[PAD6]"};
  std::vector<int32_t> types = {1, 1, 1, 1, 3, 4, 5};
  std::vector<std::string> merges = {"a b"};
  bool with_tokens = true, with_merges = true, with_types = true, tokens_as_ints = false;

  std::string write(const TempDir& dir, const std::string& name) const {
    gg::Writer w;
    w.add_string("general.architecture", "qwen35");
    w.add_string("tokenizer.ggml.model", model);
    w.add_string("tokenizer.ggml.pre", pre);
    if (with_tokens) {
      if (tokens_as_ints) w.add_i32_array("tokenizer.ggml.tokens", {1, 2, 3});
      else w.add_string_array("tokenizer.ggml.tokens", tokens);
    }
    if (with_types) w.add_i32_array("tokenizer.ggml.token_type", types);
    if (with_merges) w.add_string_array("tokenizer.ggml.merges", merges);
    std::string path = dir.file(name + ".gguf");
    w.write(path);
    return path;
  }
};

imp_status load_status(const std::string& path, std::string* message) {
  imp_tokenizer* t = nullptr;
  imp_status s = imp_tokenizer_load(&t, path.c_str());
  *message = imp_last_error();
  imp_tokenizer_free(t);
  return s;
}

TEST(GgufTokenizer, SmallVocabulary) {
  TempDir dir;
  std::unique_ptr<imp::Tokenizer> t = imp::Tokenizer::load(Small().write(dir, "ok"));
  EXPECT_EQ(t->n_vocab(), 7);
  EXPECT_EQ(t->encode("ab<|x|><y> a", true), (Ids{2, 4, 5, 3, 0}));
  EXPECT_TRUE(t->encode("<|x|>", false).empty());  // control: parsed only with parse_special (its bytes have no tokens)
  EXPECT_EQ(t->encode("<y>", false), (Ids{5}));      // user-defined: always recognised
  EXPECT_TRUE(t->is_special(4));
  EXPECT_FALSE(t->is_special(5));
  EXPECT_EQ(t->piece(3), " ");
  EXPECT_EQ(t->piece(6), "");  // unused filler
  EXPECT_EQ(t->token_id("[PAD6]"), -1);
  // Without token_type every token is normal.
  Small s;
  s.with_types = false;
  s.tokens = {"a", "b", "ab"};
  EXPECT_EQ(imp::Tokenizer::load(s.write(dir, "notypes"))->encode("ab", true), (Ids{2}));
}

TEST(GgufTokenizer, MalformedMetadataIsTokenizerError) {
  TempDir dir;
  struct Case {
    const char* name;
    std::function<void(Small&)> edit;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"no_tokens", [](Small& s) { s.with_tokens = false; }, "tokenizer.ggml.tokens"},
      {"tokens_not_strings", [](Small& s) { s.tokens_as_ints = true; }, "not an array of strings"},
      {"no_merges", [](Small& s) { s.with_merges = false; }, "tokenizer.ggml.merges"},
      {"empty_tokens", [](Small& s) { s.tokens.clear(); s.types.clear(); s.merges.clear(); }, "empty"},
      {"merge_unknown_left", [](Small& s) { s.merges = {"c b"}; }, "\"c\", which is not a normal token"},
      {"merge_unknown_result", [](Small& s) { s.merges = {"b a"}; }, "\"ba\", which is not a normal token"},
      {"merge_names_control", [](Small& s) { s.merges = {"a <|x|>"}; }, "not a normal token"},
      {"merge_one_part", [](Small& s) { s.merges = {"ab"}; }, "two tokens separated by one space"},
      {"unknown_pre", [](Small& s) { s.pre = "llama-bpe"; }, "tokenizer.ggml.pre \"llama-bpe\""},
      {"qwen3_pre", [](Small& s) { s.pre = "qwen3"; }, "tokenizer.ggml.pre \"qwen3\" is not supported"},
      {"empty_pre", [](Small& s) { s.pre = ""; }, "tokenizer.ggml.pre \"\""},
      {"unknown_model", [](Small& s) { s.model = "llama"; }, "tokenizer.ggml.model \"llama\""},
      {"types_length", [](Small& s) { s.types.pop_back(); }, "token_type has 6 entries for 7 tokens"},
      {"byte_type", [](Small& s) { s.types[0] = 6; }, "token_type 6 (byte)"},
      {"duplicate_token", [](Small& s) { s.tokens[1] = "a"; }, "repeats token 0"},
      {"empty_control", [](Small& s) { s.tokens[4] = ""; }, "control token 4 is empty"},
      {"invalid_utf8_control", [](Small& s) { s.tokens[4] = "\xFF"; }, "not valid UTF-8"},
  };
  for (const Case& c : cases) {
    Small s;
    c.edit(s);
    std::string msg;
    EXPECT_EQ(load_status(s.write(dir, c.name), &msg), IMP_ERR_TOKENIZER) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.says), std::string::npos) << c.name << ": " << msg;
    try {
      imp::Tokenizer::load(dir.file(std::string(c.name) + ".gguf"));
      ADD_FAILURE() << c.name << " loaded";
    } catch (const imp::Error& e) {
      EXPECT_EQ(e.status(), IMP_ERR_TOKENIZER) << c.name;
    }
  }
  // A model GGUF without any tokenizer keys.
  gg::Writer w;
  w.add_string("general.architecture", "qwen35");
  w.write(dir.file("bare.gguf"));
  std::string msg;
  EXPECT_EQ(load_status(dir.file("bare.gguf"), &msg), IMP_ERR_TOKENIZER);
  EXPECT_NE(msg.find("carries no tokenizer"), std::string::npos) << msg;
  // A file with the GGUF magic but a broken header stays a header error.
  {
    std::string bad = dir.file("truncated.gguf");
    std::string bytes = w.bytes().substr(0, 10);
    FILE* fp = std::fopen(bad.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), fp);
    std::fclose(fp);
    EXPECT_EQ(load_status(bad, &msg), IMP_ERR_BAD_HEADER) << msg;
  }
}

// "qwen35": Qwen3.5's split, in which a combining mark joins the letters before it (NFC first, like "qwen2").
// x + U+0301 has no composed form, so NFC keeps the mark; only in one piece with "x" can the merges reach "x́".
TEST(GgufTokenizer, Qwen35PreTokenizer) {
  using imp::tok::bytes_to_byte_level;
  TempDir dir;
  Small s;
  s.tokens = {"x", bytes_to_byte_level("\xCC"), bytes_to_byte_level("\x81"), bytes_to_byte_level("\xCC\x81"),
              bytes_to_byte_level("x\xCC\x81"), "\xC4\xA0"};
  s.types = {1, 1, 1, 1, 1, 1};
  s.merges = {s.tokens[1] + " " + s.tokens[2], "x " + s.tokens[3]};
  s.pre = "qwen35";
  std::unique_ptr<imp::Tokenizer> m = imp::Tokenizer::load(s.write(dir, "qwen35"));
  s.pre = "qwen2";
  std::unique_ptr<imp::Tokenizer> q = imp::Tokenizer::load(s.write(dir, "qwen2"));
  EXPECT_EQ(m->encode("x\xCC\x81 x", true), (Ids{4, 5, 0}));
  EXPECT_EQ(q->encode("x\xCC\x81 x", true), (Ids{0, 3, 5, 0}));
  EXPECT_EQ(m->decode(Ids{4}.data(), 1, false), "x\xCC\x81");
}

// What GGUF cannot carry is refused when exporting (the converter would otherwise write a different tokenizer).
TEST(GgufTokenizer, ExportRefusesWhatGgufCannotSay) {
  const std::string split =
      R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": )"
      R"("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, )"
      R"("behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})";
  auto json = [&](const std::string& normalizer, const std::string& added) {
    return "{\"normalizer\": " + normalizer + ", " + split + ", \"added_tokens\": [" + added +
           "], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}";
  };
  auto ok = imp::Tokenizer::from_json(json("{\"type\": \"NFC\"}", ""), "ok");
  imp::GgufVocab v = ok->gguf_vocab(5);
  EXPECT_EQ(v.pre, "qwen2");
  EXPECT_EQ(v.tokens, (std::vector<std::string>{"a", "b", "ab", "[PAD3]", "[PAD4]"}));
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b"}));
  EXPECT_THROW(ok->gguf_vocab(2), imp::Error);
  auto no_nfc = imp::Tokenizer::from_json(json("null", ""), "no_nfc");
  EXPECT_THROW(no_nfc->gguf_vocab(3), imp::Error);
  auto lstrip = imp::Tokenizer::from_json(
      json("{\"type\": \"NFC\"}", R"({"id": 3, "content": "<m>", "special": true, "lstrip": true})"), "lstrip");
  EXPECT_THROW(lstrip->gguf_vocab(4), imp::Error);
  // Qwen3.5's regex is written as "qwen35" (and read back as it).
  std::string qwen35 = json("{\"type\": \"NFC\"}", "");
  const std::string from = R"(\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+)";
  const std::string to = R"(\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+)";
  ASSERT_NE(qwen35.find(from), std::string::npos);
  qwen35.replace(qwen35.find(from), from.size(), to);
  EXPECT_EQ(imp::Tokenizer::from_json(qwen35, "qwen35")->gguf_vocab(3).pre, "qwen35");
}

}  // namespace
