// Bad input through the C ABI: each case returns its own status and a message naming the problem, with no
// crash and no leak (the suite runs under valgrind in CI's memcheck step).
#include <imp/imp.h>

#include "support/tiny_model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using imp::test::TempDir;
using imp::test::TinyModelOptions;

namespace {

// Loads dir, expecting `want`; the message must mention `needle`.
void expect_load_error(const std::string& dir, imp_status want, const std::string& needle) {
  imp_model* model = reinterpret_cast<imp_model*>(0x1);  // poisoned: must come back NULL
  imp_status st = imp_model_load(&model, dir.c_str(), nullptr);
  EXPECT_EQ(st, want) << imp_status_name(st) << ": " << imp_last_error();
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(imp_last_error()).find(needle), std::string::npos) << imp_last_error();
}

std::string read(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void replace_in_file(const std::string& path, const std::string& from, const std::string& to) {
  std::string s = read(path);
  size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.replace(at, from.size(), to);
  imp::test::write_text(path, s);
}

}  // namespace

TEST(ModelErrors, LoadsTheValidTinyModel) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  imp_model* model = nullptr;
  ASSERT_EQ(imp_model_load(&model, d.path().c_str(), nullptr), IMP_OK) << imp_last_error();
  EXPECT_STREQ(imp_last_error(), "");
  imp_model_info info;
  info.size = sizeof info;
  ASSERT_EQ(imp_model_get_info(model, &info), IMP_OK);
  EXPECT_EQ(info.n_vocab, 96);
  EXPECT_EQ(info.n_layer_full, 2);
  EXPECT_EQ(info.n_layer_linear, 2);
  EXPECT_EQ(info.n_mtp_layer, 1);
  EXPECT_STREQ(info.arch, "qwen3_5");
  imp_model_free(model);
}

TEST(ModelErrors, MissingDirectory) { expect_load_error("/nonexistent/imp/model", IMP_ERR_NOT_FOUND, "/nonexistent/imp/model"); }

TEST(ModelErrors, MissingConfig) {
  TempDir d;
  expect_load_error(d.path(), IMP_ERR_MISSING_CONFIG, "config.json");
}

TEST(ModelErrors, MalformedJson) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  imp::test::write_text(d.file("config.json"), "{\"model_type\": \"qwen3_5\", \"hidden_size\": 32,");
  expect_load_error(d.path(), IMP_ERR_BAD_JSON, "config.json");
}

TEST(ModelErrors, UnknownModelType) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  replace_in_file(d.file("config.json"), "qwen3_5_text", "llama");
  expect_load_error(d.path(), IMP_ERR_UNKNOWN_ARCH, "llama");
}

TEST(ModelErrors, MissingConfigField) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  replace_in_file(d.file("config.json"), "\"hidden_size\"", "\"hidden_sighs\"");
  expect_load_error(d.path(), IMP_ERR_BAD_CONFIG, "hidden_size");
}

TEST(ModelErrors, TruncatedSafetensorsHeader) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  std::string s = read(d.file("model.safetensors"));
  imp::test::write_text(d.file("model.safetensors"), s.substr(0, 100));
  expect_load_error(d.path(), IMP_ERR_BAD_HEADER, "truncated");
  imp::test::write_text(d.file("model.safetensors"), s.substr(0, 5));
  expect_load_error(d.path(), IMP_ERR_BAD_HEADER, "truncated");
}

TEST(ModelErrors, HeaderOffsetsOutOfRange) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  std::string s = read(d.file("model.safetensors"));
  // Cut the data short: the header still claims the full extents.
  imp::test::write_text(d.file("model.safetensors"), s.substr(0, s.size() - 64));
  expect_load_error(d.path(), IMP_ERR_BAD_OFFSETS, "outside");
}

TEST(ModelErrors, WrongShape) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  auto t = imp::test::tiny_tensors(TinyModelOptions{});
  t["model.layers.1.self_attn.k_proj.weight"].shape = {8, 64};  // 512 values either way
  imp::test::write_safetensors(d.file("model.safetensors"), t);
  expect_load_error(d.path(), IMP_ERR_TENSOR_SHAPE, "model.layers.1.self_attn.k_proj.weight");
}

TEST(ModelErrors, WrongDtype) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  auto t = imp::test::tiny_tensors(TinyModelOptions{});
  t["model.norm.weight"].dtype = "I64";
  imp::test::write_safetensors(d.file("model.safetensors"), t);
  expect_load_error(d.path(), IMP_ERR_TENSOR_DTYPE, "model.norm.weight");
}

TEST(ModelErrors, MissingTensor) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  auto t = imp::test::tiny_tensors(TinyModelOptions{});
  t.erase("model.layers.2.linear_attn.A_log");
  imp::test::write_safetensors(d.file("model.safetensors"), t);
  expect_load_error(d.path(), IMP_ERR_MISSING_TENSOR, "model.layers.2.linear_attn.A_log");
}

TEST(ModelErrors, NoWeightFiles) {
  TempDir d;
  imp::test::write_text(d.file("config.json"), imp::test::tiny_config_json(TinyModelOptions{}));
  expect_load_error(d.path(), IMP_ERR_MISSING_TENSOR, "model.safetensors");
}

TEST(ModelErrors, ShardIndexNamesMissingShard) {
  TempDir d;
  imp::test::write_text(d.file("config.json"), imp::test::tiny_config_json(TinyModelOptions{}));
  imp::test::write_text(d.file("model.safetensors.index.json"),
                        "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}");
  expect_load_error(d.path(), IMP_ERR_IO, "model-00001-of-00002.safetensors");
}

class ContextErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    imp::test::write_tiny_model(dir_.path(), TinyModelOptions{});
    ASSERT_EQ(imp_model_load(&model_, dir_.path().c_str(), nullptr), IMP_OK) << imp_last_error();
    imp_context_params cp = imp_context_default_params();
    cp.n_ctx = 16;
    cp.n_threads = 2;
    ASSERT_EQ(imp_context_create(&ctx_, model_, &cp), IMP_OK) << imp_last_error();
  }
  void TearDown() override {
    imp_context_free(ctx_);
    imp_model_free(model_);
  }
  TempDir dir_;
  imp_model* model_ = nullptr;
  imp_context* ctx_ = nullptr;
  std::vector<float> logits_ = std::vector<float>(96 * 16);
};

TEST_F(ContextErrors, TokenOutsideVocabulary) {
  imp_token bad[3] = {1, 96, 2};
  EXPECT_EQ(imp_prefill(ctx_, bad, 3, IMP_LOGITS_LAST, logits_.data(), logits_.size()), IMP_ERR_TOKEN_OUT_OF_RANGE);
  EXPECT_NE(std::string(imp_last_error()).find("96"), std::string::npos);
  imp_token neg = -1;
  EXPECT_EQ(imp_decode(ctx_, neg, nullptr, 0), IMP_ERR_TOKEN_OUT_OF_RANGE);
  EXPECT_EQ(imp_context_n_past(ctx_), 0);  // nothing was appended
}

TEST_F(ContextErrors, PrefillPastContextSize) {
  std::vector<imp_token> toks(10, 3);
  ASSERT_EQ(imp_prefill(ctx_, toks.data(), 10, IMP_LOGITS_NONE, nullptr, 0), IMP_OK);
  EXPECT_EQ(imp_prefill(ctx_, toks.data(), 7, IMP_LOGITS_LAST, logits_.data(), logits_.size()), IMP_ERR_CONTEXT_FULL);
  EXPECT_NE(std::string(imp_last_error()).find("context size 16"), std::string::npos) << imp_last_error();
  EXPECT_EQ(imp_context_n_past(ctx_), 10);  // the context is still usable
  EXPECT_EQ(imp_prefill(ctx_, toks.data(), 6, IMP_LOGITS_LAST, logits_.data(), logits_.size()), IMP_OK);
  EXPECT_EQ(imp_decode(ctx_, 1, nullptr, 0), IMP_ERR_CONTEXT_FULL);
}

TEST_F(ContextErrors, BufferTooSmallAndBadArguments) {
  imp_token t[2] = {1, 2};
  EXPECT_EQ(imp_prefill(ctx_, t, 2, IMP_LOGITS_ALL, logits_.data(), 96 * 2 - 1), IMP_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(imp_prefill(ctx_, t, 0, IMP_LOGITS_LAST, logits_.data(), logits_.size()), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(imp_prefill(ctx_, t, 2, static_cast<imp_logits_mode>(3)  /* in the enum's range, not an enumerator */, logits_.data(), logits_.size()), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(imp_prefill(ctx_, t, 2, IMP_LOGITS_LAST, nullptr, 0), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_context_n_past(ctx_), 0);
}

TEST(NullHandles, EveryEntryPointReturnsAStatus) {
  imp_model* model = nullptr;
  imp_context* ctx = nullptr;
  imp_token t = 0;
  float f[4];
  EXPECT_EQ(imp_model_load(nullptr, "x", nullptr), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_model_load(&model, nullptr, nullptr), IMP_ERR_NULL_ARGUMENT);
  EXPECT_NE(std::string(imp_last_error()).find("path"), std::string::npos);
  EXPECT_EQ(imp_context_create(&ctx, nullptr, nullptr), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(ctx, nullptr);
  EXPECT_EQ(imp_context_create(nullptr, nullptr, nullptr), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_prefill(nullptr, &t, 1, IMP_LOGITS_LAST, f, 4), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_decode(nullptr, 0, f, 4), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_context_reset(nullptr), IMP_ERR_NULL_ARGUMENT);
  EXPECT_EQ(imp_context_n_past(nullptr), -1);
  EXPECT_EQ(imp_context_n_ctx(nullptr), -1);
  EXPECT_EQ(imp_model_n_vocab(nullptr), -1);
  imp_model_info info;
  info.size = sizeof info;
  EXPECT_EQ(imp_model_get_info(nullptr, &info), IMP_ERR_NULL_ARGUMENT);
  imp_model_free(nullptr);
  imp_context_free(nullptr);
}

TEST(Params, SizeFieldIsChecked) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  imp_model* model = nullptr;
  ASSERT_EQ(imp_model_load(&model, d.path().c_str(), nullptr), IMP_OK);
  imp_context_params cp = imp_context_default_params();
  cp.size = 4;
  imp_context* ctx = nullptr;
  EXPECT_EQ(imp_context_create(&ctx, model, &cp), IMP_ERR_INVALID_ARGUMENT);
  cp = imp_context_default_params();
  cp.n_ctx = -5;
  EXPECT_EQ(imp_context_create(&ctx, model, &cp), IMP_ERR_INVALID_ARGUMENT);
  imp_model_info info;
  info.size = 2;
  EXPECT_EQ(imp_model_get_info(model, &info), IMP_ERR_INVALID_ARGUMENT);
  // An older, shorter info struct: only its fields are written.
  unsigned char buf[sizeof(imp_model_info)];
  std::memset(buf, 0xAB, sizeof buf);
  imp_model_info* small = reinterpret_cast<imp_model_info*>(buf);
  small->size = offsetof(imp_model_info, n_embd);
  EXPECT_EQ(imp_model_get_info(model, small), IMP_OK);
  EXPECT_EQ(small->n_vocab, 96);
  EXPECT_EQ(buf[offsetof(imp_model_info, n_embd)], 0xAB);
  imp_model_free(model);
}

// Handles are checked: freed handles give a status, double frees are no-ops, and a context keeps its model alive.
TEST(Lifetime, FreedHandlesDoubleFreesAndModelsKeptAliveByContexts) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), TinyModelOptions{});
  imp_model* model = nullptr;
  ASSERT_EQ(imp_model_load(&model, d.path().c_str(), nullptr), IMP_OK);
  imp_context* ctx = nullptr;
  ASSERT_EQ(imp_context_create(&ctx, model, nullptr), IMP_OK);

  imp_model_free(model);  // the context still uses it
  imp_token t[3] = {1, 2, 3};
  std::vector<float> logits(96);
  EXPECT_EQ(imp_prefill(ctx, t, 3, IMP_LOGITS_LAST, logits.data(), logits.size()), IMP_OK) << imp_last_error();
  EXPECT_EQ(imp_model_n_vocab(model), -1);  // the caller's reference is gone
  imp_context* second = nullptr;
  EXPECT_EQ(imp_context_create(&second, model, nullptr), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(imp_last_error()).find("freed"), std::string::npos) << imp_last_error();
  imp_model_free(model);  // double free: no-op

  imp_context_free(ctx);  // frees the model too
  EXPECT_EQ(imp_prefill(ctx, t, 3, IMP_LOGITS_LAST, logits.data(), logits.size()), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(imp_decode(ctx, 1, nullptr, 0), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(imp_context_reset(ctx), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(imp_context_n_past(ctx), -1);
  imp_token drafts[2];
  EXPECT_EQ(imp_mtp_draft(ctx, 1, 2, drafts, nullptr), IMP_ERR_INVALID_ARGUMENT);
  imp_context_free(ctx);  // double free: no-op
}
