// The tokenizer against Hugging Face tokenizers: ids for every chunk of tests/tokenizer/corpus.txt must equal
// the goldens that tools/fixtures/tokenizer/make_goldens.py wrote, with special tokens parsed and not parsed, and
// decode(encode(x)) must give NFC(x) back. The real Qwen3 tokenizer.json is not committed: fetch it with
// tools/fixtures/tokenizer/fetch_qwen3_tokenizer.sh (or point IMP_QWEN3_TOKENIZER at it); without it these
// tests skip. The demo model's tokenizer is tested the same way once it and its goldens exist.
// The Qwen3.5 Split regex (no real Qwen3.5 tokenizer.json here): the pre-tokenizer's pieces over corpus.txt and
// marks.txt and the ids of Qwen3's tokenizer.json with its regex swapped in, against the goldens of
// tools/fixtures/tokenizer/make_split_goldens.sh (Hugging Face tokenizers' npm package, the same Rust code).
#include "core/error.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_test_util.h"
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>
#include <imp/imp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

namespace {

using namespace tokenizer_test;
using Ids = std::vector<int32_t>;

const std::string kData = std::string(IMP_SOURCE_DIR) + "/tests/tokenizer/";

// Loads a tokenizer once per path for the whole test program (the Qwen3 file takes a moment to parse).
const imp::Tokenizer* cached(const std::string& path) {
  static std::map<std::string, std::unique_ptr<imp::Tokenizer>> loaded;
  auto& slot = loaded[path];
  if (!slot) slot = imp::Tokenizer::load(path);
  return slot.get();
}

// The chunks of corpus.txt, and after them those of marks.txt (combining marks; the split goldens' input).
std::vector<std::string> corpus_and_marks() {
  std::vector<std::string> chunks = corpus_chunks(read_all(kData + "corpus.txt"));
  for (std::string& c : corpus_chunks(read_all(kData + "marks.txt"))) chunks.push_back(std::move(c));
  return chunks;
}

// The ids of every chunk against the golden file (label names it in messages).
void check_ids(const imp::Tokenizer& tok, const std::vector<std::string>& chunks, const std::string& file,
               bool parse_special, const std::string& label) {
  std::vector<Ids> golden;
  ASSERT_TRUE(read_golden(kData + file, &golden)) << file;
  ASSERT_EQ(golden.size(), chunks.size()) << file << ": golden file and corpus disagree on the number of chunks";
  size_t mismatches = 0, tokens = 0, bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < chunks.size(); ++i) {
    Ids ids = tok.encode(chunks[i], parse_special);
    tokens += ids.size();
    bytes += chunks[i].size();
    if (ids != golden[i] && ++mismatches <= 5) {
      size_t k = 0;
      while (k < ids.size() && k < golden[i].size() && ids[k] == golden[i][k]) ++k;
      std::string around = tok.decode(golden[i].data() + (k > 3 ? k - 3 : 0),
                                      std::min<size_t>(golden[i].size() - (k > 3 ? k - 3 : 0), 8), false);
      ADD_FAILURE() << label << " chunk " << i << ": first difference at token " << k << " of "
                    << golden[i].size() << " (got " << (k < ids.size() ? ids[k] : -1) << ", want "
                    << (k < golden[i].size() ? golden[i][k] : -1) << "), near \"" << around << "\"";
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(mismatches, 0u) << label << ": chunks whose ids differ from Hugging Face's";
  std::printf("%s: %zu chunks, %zu bytes, %zu tokens, %.2f MB/s\n", label.c_str(), chunks.size(), bytes, tokens,
              bytes / s / 1e6);
}

// The golden comparison shared by every tokenizer: name picks tests/tokenizer/NAME.{special,plain}.ids.bin.
void check_goldens(const imp::Tokenizer& tok, const std::string& name) {
  std::vector<std::string> chunks = corpus_chunks(read_all(kData + "corpus.txt"));
  ASSERT_GT(chunks.size(), 100u);
  for (const char* mode : {"special", "plain"}) {
    check_ids(tok, chunks, name + "." + mode + ".ids.bin", std::string(mode) == "special", name + " " + mode);
  }
}

void check_round_trip(const imp::Tokenizer& tok, const std::vector<std::string>& chunks) {
  size_t bad = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    Ids ids = tok.encode(chunks[i], true);
    if (tok.decode(ids.data(), ids.size(), false) != imp::tok::nfc(chunks[i]) && ++bad <= 3)
      ADD_FAILURE() << "chunk " << i << " does not round-trip";
    // The stream decoder's output, concatenated, is the same text.
    imp::StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    if (streamed != imp::tok::nfc(chunks[i]) && ++bad <= 3) ADD_FAILURE() << "chunk " << i << " streamed differs";
  }
  EXPECT_EQ(bad, 0u);
}

// The pre-tokenizer alone against Hugging Face's Split with each Qwen regex, on the raw (not normalized) chunks of
// corpus.txt and marks.txt: split.NAME.bin holds every piece's length in bytes. These need no tokenizer.json.
void check_split_goldens(imp::tok::SplitPattern pattern, const std::string& name) {
  std::vector<std::string> chunks = corpus_and_marks();
  std::vector<Ids> golden;
  ASSERT_TRUE(read_golden(kData + "split." + name + ".bin", &golden)) << name;
  ASSERT_EQ(golden.size(), chunks.size()) << "split." << name << ".bin and the corpora disagree on the chunks";
  size_t mismatches = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    Ids lengths;
    for (auto [b, e] : imp::tok::pre_tokenize(chunks[i], pattern)) lengths.push_back(int32_t(e - b));
    if (lengths == golden[i]) continue;
    if (++mismatches > 5) continue;
    size_t k = 0, at = 0;
    while (k < lengths.size() && k < golden[i].size() && lengths[k] == golden[i][k]) at += size_t(lengths[k++]);
    ADD_FAILURE() << name << " chunk " << i << ": piece " << k << " at byte " << at << " is "
                  << (k < lengths.size() ? lengths[k] : -1) << " bytes, Hugging Face's "
                  << (k < golden[i].size() ? golden[i][k] : -1) << ", in \"" << chunks[i].substr(at, 40) << "\"";
  }
  EXPECT_EQ(mismatches, 0u) << name << ": chunks split differently from Hugging Face";
}

TEST(SplitGoldens, Qwen35) { check_split_goldens(imp::tok::SplitPattern::Qwen35, "qwen35"); }

TEST(SplitGoldens, Qwen3) { check_split_goldens(imp::tok::SplitPattern::Qwen, "qwen3"); }

class Qwen3 : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = qwen3_path();
    if (!file_exists(path_))
      GTEST_SKIP() << "no Qwen3 tokenizer.json at " << path_
                   << ": run tools/fixtures/tokenizer/fetch_qwen3_tokenizer.sh or set IMP_QWEN3_TOKENIZER";
    tok_ = cached(path_);
  }
  std::string path_;
  const imp::Tokenizer* tok_ = nullptr;
};

TEST_F(Qwen3, MatchesHuggingFaceGoldens) { check_goldens(*tok_, "qwen3"); }

TEST_F(Qwen3, RoundTripIsNfc) { check_round_trip(*tok_, corpus_chunks(read_all(kData + "corpus.txt"))); }

// Qwen3.5's pipeline is Qwen3's with another Split regex. Its vocabulary (248k tokens) is not fetched, so the
// regex is tested end to end in Qwen3's tokenizer.json: ids of corpus.txt and marks.txt, special tokens parsed,
// against Hugging Face's for the same edited file (tools/fixtures/tokenizer/make_split_goldens.sh).
TEST_F(Qwen3, Qwen35RegexMatchesHuggingFaceGoldens) {
  auto json_escaped = [](const char* regex) {
    std::string out;
    for (const char* c = regex; *c; ++c) {
      if (*c == '\\' || *c == '"') out += '\\';
      out += *c;
    }
    return out;
  };
  std::string json = read_all(path_);
  const std::string from = json_escaped(imp::tok::kQwenPattern), to = json_escaped(imp::tok::kQwen35Pattern);
  size_t at = json.find(from);
  ASSERT_NE(at, std::string::npos) << "the Qwen3 tokenizer.json does not hold Qwen3's Split regex";
  json.replace(at, from.size(), to);
  std::unique_ptr<imp::Tokenizer> tok = imp::Tokenizer::from_json(std::move(json), "qwen3-qwen35re");
  std::vector<std::string> chunks = corpus_and_marks();
  check_ids(*tok, chunks, "qwen3-qwen35re.ids.bin", true, "qwen3-qwen35re special");
  check_round_trip(*tok, chunks);
}

TEST_F(Qwen3, KnownIdsAndSpecials) {
  EXPECT_EQ(tok_->n_vocab(), 151669);
  EXPECT_EQ(tok_->encode("Hello, world!", true), (Ids{9707, 11, 1879, 0}));
  EXPECT_EQ(tok_->token_id("<|endoftext|>"), 151643);
  EXPECT_EQ(tok_->token_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok_->token_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok_->token_id("<think>"), 151667);
  EXPECT_TRUE(tok_->is_special(151645));
  EXPECT_FALSE(tok_->is_special(151667));  // <think> is added but not special: matched even unparsed
  Ids parsed = tok_->encode("<|im_start|>user\nhi<|im_end|>", true);
  EXPECT_EQ(parsed.front(), 151644);
  EXPECT_EQ(parsed.back(), 151645);
  Ids plain = tok_->encode("<|im_start|>user<think>", false);
  EXPECT_NE(plain.front(), 151644);
  EXPECT_EQ(plain.back(), 151667);
  EXPECT_EQ(tok_->decode(parsed.data(), parsed.size(), true), "user\nhi");
}

// One tokenizer shared by several threads (the word cache is the only mutable state) gives the same ids.
TEST_F(Qwen3, ConcurrentEncode) {
  std::vector<std::string> chunks = corpus_chunks(read_all(kData + "corpus.txt"));
  std::vector<Ids> want;
  for (const auto& c : chunks) want.push_back(tok_->encode(c, true));
  std::atomic<size_t> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < chunks.size(); i += 2) {  // overlapping halves: threads race on the same words
        if (tok_->encode(chunks[i], true) != want[i]) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0u);
}

TEST_F(Qwen3, CApi) {
  imp_tokenizer* t = nullptr;
  ASSERT_EQ(imp_tokenizer_load(&t, path_.c_str()), IMP_OK) << imp_last_error();
  EXPECT_EQ(imp_tokenizer_n_vocab(t), 151669);
  imp_token id = -1;
  EXPECT_EQ(imp_tokenizer_token_id(t, "<|im_end|>", &id), IMP_OK);
  EXPECT_EQ(id, 151645);
  const char* text = "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C";  // 你好，世界
  size_t n = 0;
  EXPECT_EQ(imp_tokenize(t, text, strlen(text), 1, nullptr, 0, &n), IMP_ERR_BUFFER_TOO_SMALL);
  std::vector<imp_token> ids(n);
  EXPECT_EQ(imp_tokenize(t, text, strlen(text), 1, ids.data(), ids.size(), &n), IMP_OK);
  std::vector<char> buf(64);
  EXPECT_EQ(imp_detokenize(t, ids.data(), n, 0, buf.data(), buf.size(), &n), IMP_OK);
  EXPECT_EQ(std::string(buf.data(), n), text);
  imp_tokenizer_free(t);
}

// The demo model's tokenizer (models/imp-demo/tokenizer.json, trained separately) and its goldens: skipped until
// both exist. Make the goldens with make_goldens.py ... imp-demo=models/imp-demo/tokenizer.json.
TEST(ImpDemoTokenizer, MatchesHuggingFaceGoldens) {
  std::string path = std::string(IMP_SOURCE_DIR) + "/models/imp-demo/tokenizer.json";
  if (!file_exists(path)) GTEST_SKIP() << "no " << path << " yet (the demo model is trained separately)";
  if (!file_exists(kData + "imp-demo.special.ids.bin"))
    GTEST_SKIP() << "no goldens for " << path << ": run tools/fixtures/tokenizer/make_goldens.py with "
                 << "imp-demo=models/imp-demo/tokenizer.json on a machine with tokenizers and copy them to "
                 << kData;
  const imp::Tokenizer* tok = cached(path);
  check_goldens(*tok, "imp-demo");
  check_round_trip(*tok, corpus_chunks(read_all(kData + "corpus.txt")));
}

}  // namespace
