// Sequence-state invariants of the CPU backend on random tiny models (dense and MoE): incremental decoding
// equals one prefill, chunking and thread count do not change results, and snapshot/restore, rollback and reset
// return to exactly the state they claim.
#include "engine/forward.h"
#include "model/model.h"
#include "support/tiny_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using imp::ForwardBatch;
using imp::test::TempDir;
using imp::test::TinyModelOptions;

namespace {

std::vector<int32_t> random_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % vocab);
  return t;
}

// Runs tokens through f in one call and returns the logits of every row.
std::vector<float> forward_all(imp::ForwardPass& f, const std::vector<int32_t>& toks, int vocab, bool keep_rows = false) {
  std::vector<int32_t> rows(toks.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int32_t(i);
  std::vector<float> logits(toks.size() * vocab, NAN);
  ForwardBatch b;
  b.tokens = toks.data();
  b.n_tokens = int(toks.size());
  b.logit_rows = rows.data();
  b.n_logit_rows = int(rows.size());
  b.logits = logits.data();
  b.keep_row_states = keep_rows;
  f.Forward(b);
  return logits;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double mx = 0, d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    mx = std::max(mx, std::fabs(double(b[i])));
    d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  }
  return d / mx;
}

class ForwardState : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    TinyModelOptions o;
    o.moe = GetParam();
    o.dtype = "BF16";
    imp::test::write_tiny_model(dir_.path(), o);
    model_ = imp::load_model(dir_.path());
    vocab_ = model_->config.n_vocab;
  }
  TempDir dir_;
  std::unique_ptr<imp::Model> model_;
  int vocab_ = 0;
};

TEST_P(ForwardState, DecodeStepsEqualOnePrefill) {
  auto toks = random_tokens(40, vocab_, 7);
  auto full = imp::make_cpu_forward(*model_, 64, 2);
  std::vector<float> want = forward_all(*full, toks, vocab_);
  for (int split : {1, 13, 39}) {
    auto f = imp::make_cpu_forward(*model_, 64, 2);
    std::vector<float> got = forward_all(*f, std::vector<int32_t>(toks.begin(), toks.begin() + split), vocab_);
    for (int i = split; i < 40; ++i) {
      std::vector<float> step = forward_all(*f, {toks[i]}, vocab_);
      got.insert(got.end(), step.begin(), step.end());
    }
    EXPECT_LE(max_rel_diff(got, want), 1e-5) << "split " << split;
  }
}

TEST_P(ForwardState, ChunkedPrefillAndThreadCountDoNotChangeResults) {
  auto toks = random_tokens(33, vocab_, 9);
  auto one = imp::make_cpu_forward(*model_, 64, 1);
  std::vector<float> want = forward_all(*one, toks, vocab_);
  auto f = imp::make_cpu_forward(*model_, 64, 2);
  std::vector<float> a = forward_all(*f, std::vector<int32_t>(toks.begin(), toks.begin() + 10), vocab_);
  std::vector<float> b = forward_all(*f, std::vector<int32_t>(toks.begin() + 10, toks.end()), vocab_);
  a.insert(a.end(), b.begin(), b.end());
  EXPECT_EQ(a, want);  // bitwise: every row is computed the same way whatever the batch or thread split
}

TEST_P(ForwardState, SnapshotRestoreAndReset) {
  auto toks = random_tokens(20, vocab_, 11);
  auto f = imp::make_cpu_forward(*model_, 64, 2);
  forward_all(*f, std::vector<int32_t>(toks.begin(), toks.begin() + 12), vocab_);
  auto snap = f->Snapshot();
  std::vector<int32_t> tail(toks.begin() + 12, toks.end());
  std::vector<float> first = forward_all(*f, tail, vocab_);
  forward_all(*f, random_tokens(5, vocab_, 3), vocab_);  // wander off
  f->Restore(*snap);
  EXPECT_EQ(f->n_past(), 12);
  EXPECT_EQ(forward_all(*f, tail, vocab_), first);

  f->Reset();
  EXPECT_EQ(f->n_past(), 0);
  auto fresh = imp::make_cpu_forward(*model_, 64, 2);
  EXPECT_EQ(forward_all(*f, toks, vocab_), forward_all(*fresh, toks, vocab_));
}

TEST_P(ForwardState, RollbackToAnyRowOfAKeptBatch) {
  auto prompt = random_tokens(9, vocab_, 21);
  auto batch = random_tokens(5, vocab_, 22);
  auto next = random_tokens(3, vocab_, 23);
  for (int keep = 0; keep <= 5; ++keep) {
    auto f = imp::make_cpu_forward(*model_, 64, 2);
    forward_all(*f, prompt, vocab_);
    forward_all(*f, batch, vocab_, /*keep_rows=*/true);
    f->RollbackTo(9 + keep);
    std::vector<float> got = forward_all(*f, next, vocab_);

    auto ref = imp::make_cpu_forward(*model_, 64, 2);
    forward_all(*ref, prompt, vocab_);
    for (int i = 0; i < keep; ++i) forward_all(*ref, {batch[i]}, vocab_);
    EXPECT_EQ(got, forward_all(*ref, next, vocab_)) << "kept " << keep;
  }
}

INSTANTIATE_TEST_SUITE_P(DenseAndMoe, ForwardState, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "moe" : "dense"; });

}  // namespace
