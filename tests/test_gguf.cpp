// GGUF models: the reader's checks on hostile files, and model parity.
//   - F32 GGUF (converted by imp::gguf::convert_hf_dir, llama.cpp's layout) gives the same logits and MTP logits
//     as the SafeTensors directory it came from (<= 1e-5 of max|logit|), for Qwen3.5 dense, Qwen3.5 MoE and
//     Qwen3-Next (fused qkvz), with HK=2 < HV=4 so the value-head reorder is exercised.
//   - Quantized GGUF (Q8_0, Q4_K, Q5_K, Q6_K, the Q4_K_M mix) gives the logits of the same file dequantized to F32
//     (<= 1e-4 of max|logit|), and greedy MTP decoding (n_draft 3) emits exactly the tokens of plain decoding.
#include <imp/imp.h>

#include "core/error.h"
#include "engine/forward.h"
#include "gguf/convert.h"
#include "gguf/gguf.h"
#include "gguf/quants.h"
#include "gguf/writer.h"
#include "model/model.h"
#include "support/compare.h"
#include "support/tiny_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

using imp::test::TempDir;
using imp::test::TinyModelOptions;
namespace gg = imp::gguf;

namespace {

// Dimensions every quantized type can take (rows of 256 values), HK=2 < HV=4 (value-head reorder matters).
TinyModelOptions opts(bool moe, uint32_t seed = 7) {
  TinyModelOptions o;
  o.moe = moe;
  o.seed = seed;
  o.hidden = 256;
  o.layers = 4;
  o.n_head = 2;
  o.n_kv = 1;
  o.head_dim = 128;
  o.k_heads = 2;
  o.v_heads = 4;
  o.k_dim = 32;
  o.v_dim = 64;
  o.ff = 256;
  o.experts = 4;
  o.experts_used = 2;
  o.ff_expert = 256;
  o.ff_shared = 256;
  return o;
}

// A Qwen3-Next checkpoint from the tiny Qwen3.5 MoE tensors: top-level config and fused, per-key-head grouped
// in_proj_qkvz / in_proj_ba.
void write_qwen3next(const std::string& dir, const TinyModelOptions& o) {
  auto t = imp::test::tiny_tensors(o);
  const int H = o.hidden, HK = o.k_heads, HV = o.v_heads, dk = o.k_dim, dv = o.v_dim, r = HV / HK;
  for (int i = 0; i < o.layers; ++i) {
    if ((i + 1) % 2 == 0) continue;
    const std::string p = "model.layers." + std::to_string(i) + ".linear_attn.";
    auto qkv = t[p + "in_proj_qkv.weight"].values, z = t[p + "in_proj_z.weight"].values;
    auto b = t[p + "in_proj_b.weight"].values, a = t[p + "in_proj_a.weight"].values;
    std::vector<float> qkvz, ba;
    auto rows = [&](std::vector<float>& dst, const std::vector<float>& src, int r0, int n) {
      dst.insert(dst.end(), src.begin() + size_t(r0) * H, src.begin() + size_t(r0 + n) * H);
    };
    for (int g = 0; g < HK; ++g) {
      rows(qkvz, qkv, g * dk, dk);
      rows(qkvz, qkv, HK * dk + g * dk, dk);
      rows(qkvz, qkv, 2 * HK * dk + g * r * dv, r * dv);
      rows(qkvz, z, g * r * dv, r * dv);
      rows(ba, b, g * r, r);
      rows(ba, a, g * r, r);
    }
    for (const char* n : {"in_proj_qkv.weight", "in_proj_z.weight", "in_proj_b.weight", "in_proj_a.weight"}) t.erase(p + n);
    t[p + "in_proj_qkvz.weight"] = imp::test::TinyTensor{"F32", {2 * HK * dk + 2 * HV * dv, H}, qkvz};
    t[p + "in_proj_ba.weight"] = imp::test::TinyTensor{"F32", {2 * HV, H}, ba};
  }
  imp::test::write_safetensors(dir + "/model.safetensors", t);
  std::ostringstream s;
  s << "{\"architectures\": [\"Qwen3NextForCausalLM\"], \"model_type\": \"qwen3_next\", \"vocab_size\": " << o.vocab
    << ", \"hidden_size\": " << H << ", \"num_hidden_layers\": " << o.layers << ", \"full_attention_interval\": 2,"
    << " \"num_attention_heads\": " << o.n_head << ", \"num_key_value_heads\": " << o.n_kv << ", \"head_dim\": " << o.head_dim
    << ", \"linear_num_key_heads\": " << HK << ", \"linear_num_value_heads\": " << HV << ", \"linear_key_head_dim\": " << dk
    << ", \"linear_value_head_dim\": " << dv << ", \"linear_conv_kernel_dim\": 4, \"partial_rotary_factor\": 0.25,"
    << " \"rope_theta\": 10000000.0, \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": false, \"max_position_embeddings\": 4096,"
    << " \"num_experts\": " << o.experts << ", \"num_experts_per_tok\": " << o.experts_used << ", \"moe_intermediate_size\": "
    << o.ff_expert << ", \"shared_expert_intermediate_size\": " << o.ff_shared << ", \"norm_topk_prob\": true,"
    << " \"num_nextn_predict_layers\": 1}";
  imp::test::write_text(dir + "/config.json", s.str());
}

struct Logits {
  std::vector<float> main, mtp;
  int vocab = 0;
};

// Main logits of every row and MTP logits of rows 0..n-2 (PrefillMtp over the prompt).
Logits run(const std::string& path, const std::vector<int32_t>& toks) {
  auto m = imp::load_model(path);
  auto fw = imp::make_cpu_forward(*m, 64, 2);
  const int n = int(toks.size()), H = m->config.n_embd, V = m->config.n_vocab;
  Logits out;
  out.vocab = V;
  std::vector<int32_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> hidden(size_t(n) * H);
  out.main.resize(size_t(n) * V);
  imp::ForwardBatch b;
  b.tokens = toks.data();
  b.n_tokens = n;
  b.logit_rows = rows.data();
  b.n_logit_rows = n;
  b.logits = out.main.data();
  b.hidden = hidden.data();
  fw->Forward(b);
  if (m->weights.has_mtp) {
    out.mtp.resize(size_t(n - 1) * V);
    fw->PrefillMtp(imp::test::mtp_batch(toks.data() + 1, hidden.data(), n - 1, 0, rows.data(), n - 1, out.mtp.data(), nullptr));
  }
  return out;
}

// max |a - b| <= tol * max |a|
void expect_close(const std::vector<float>& a, const std::vector<float>& b, double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  ASSERT_FALSE(a.empty()) << what;
  double amax = 0, dmax = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(std::isfinite(a[i]) && std::isfinite(b[i])) << what << " at " << i;
    amax = std::max(amax, double(std::fabs(a[i])));
    dmax = std::max(dmax, double(std::fabs(a[i] - b[i])));
  }
  EXPECT_LE(dmax, tol * amax) << what << ": max|diff| " << dmax << ", max|logit| " << amax;
}

const std::vector<int32_t> kPrompt = {3, 17, 42, 5, 88, 23, 61, 9, 0, 95, 12, 33};

enum class Kind { Dense, Moe, Next };

void write_hf(const std::string& dir, Kind k) {
  if (k == Kind::Next) write_qwen3next(dir, opts(true, 11));
  else imp::test::write_tiny_model(dir, opts(k == Kind::Moe));
}

class GgufParity : public ::testing::TestWithParam<Kind> {};

TEST_P(GgufParity, F32GgufEqualsSafeTensors) {
  TempDir d;
  write_hf(d.path(), GetParam());
  const std::string g = d.file("model-f32.gguf");
  gg::convert_hf_dir(d.path(), g, "f32");
  Logits ref = run(d.path(), kPrompt), got = run(g, kPrompt);
  expect_close(ref.main, got.main, 1e-5, "main logits");
  ASSERT_FALSE(ref.mtp.empty());
  expect_close(ref.mtp, got.mtp, 1e-5, "MTP logits");
}

TEST_P(GgufParity, QuantizedEqualsDequantizedReference) {
  TempDir d;
  write_hf(d.path(), GetParam());
  for (const char* type : {"q8_0", "q4_k", "q5_k", "q6_k", "q4_k_m"}) {
    const std::string q = d.file(std::string("model-") + type + ".gguf"), ref = d.file(std::string("ref-") + type + ".gguf");
    gg::convert_hf_dir(d.path(), q, type);
    gg::dequantize_file(q, ref);
    Logits a = run(ref, kPrompt), b = run(q, kPrompt);
    expect_close(a.main, b.main, 1e-4, std::string(type) + " main logits");
    expect_close(a.mtp, b.mtp, 1e-4, std::string(type) + " MTP logits");
    // How far quantization moved the logits from the unquantized model (reported; random tiny models amplify
    // weight error, so only the 8- and 6-bit files get a bound).
    Logits f = run(d.path(), kPrompt);
    double num = 0, den = 0;
    for (size_t i = 0; i < f.main.size(); ++i) num += std::pow(f.main[i] - b.main[i], 2), den += std::pow(f.main[i], 2);
    std::printf("%s: relative logit RMS error vs the unquantized model %.3f\n", type, std::sqrt(num / den));
    if (std::string(type) == "q8_0" || std::string(type) == "q6_k") EXPECT_LT(std::sqrt(num / den), 0.25) << type;
  }
}

std::vector<imp_token> generate(const std::string& path, int n_draft) {
  imp_model* model = nullptr;
  EXPECT_EQ(imp_model_load(&model, path.c_str(), nullptr), IMP_OK) << imp_last_error();
  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = 128;
  cp.n_threads = 2;
  imp_context* ctx = nullptr;
  EXPECT_EQ(imp_context_create(&ctx, model, &cp), IMP_OK) << imp_last_error();
  imp_generate_params gp = imp_generate_default_params();
  gp.max_tokens = 40;
  gp.n_draft = n_draft;
  gp.eos_token = -2;
  std::vector<imp_token> out(64);
  size_t n = 0;
  EXPECT_EQ(imp_generate(ctx, kPrompt.data(), int32_t(kPrompt.size()), &gp, nullptr, nullptr, out.data(), out.size(), &n, nullptr), IMP_OK)
      << imp_last_error();
  out.resize(n);
  imp_context_free(ctx);
  imp_model_free(model);
  return out;
}

TEST_P(GgufParity, GreedyMtpParityOnQuantizedFiles) {
  TempDir d;
  write_hf(d.path(), GetParam());
  for (const char* type : {"q8_0", "q4_k_m"}) {
    const std::string q = d.file(std::string("m-") + type + ".gguf");
    gg::convert_hf_dir(d.path(), q, type);
    std::vector<imp_token> plain = generate(q, 0), mtp = generate(q, 3);
    EXPECT_EQ(plain.size(), 40u);
    EXPECT_EQ(plain, mtp) << type;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GgufParity, ::testing::Values(Kind::Dense, Kind::Moe, Kind::Next),
                         [](const ::testing::TestParamInfo<Kind>& i) {
                           return std::string(i.param == Kind::Dense ? "Qwen35Dense" : i.param == Kind::Moe ? "Qwen35Moe" : "Qwen3Next");
                         });

TEST(GgufModel, ConvertedFileHasLlamaCppLayout) {
  TempDir d;
  imp::test::write_tiny_model(d.path(), opts(true));
  const std::string g = d.file("m.gguf");
  gg::convert_hf_dir(d.path(), g, "q4_k_m");
  auto f = gg::File::open(g);
  ASSERT_NE(f->find("general.architecture"), nullptr);
  EXPECT_EQ(f->find("general.architecture")->str, "qwen35moe");
  EXPECT_EQ(*f->find("qwen35moe.block_count")->as_int(), 5);  // 4 trunk + 1 NextN
  EXPECT_EQ(*f->find("qwen35moe.nextn_predict_layers")->as_int(), 1);
  for (const char* n : {"blk.4.nextn.eh_proj.weight", "blk.4.nextn.enorm.weight", "blk.4.nextn.hnorm.weight",
                        "blk.4.nextn.shared_head_norm.weight", "blk.4.attn_q.weight", "blk.0.ssm_a", "blk.0.ssm_dt.bias",
                        "blk.0.ssm_conv1d.weight", "blk.0.attn_qkv.weight", "blk.0.ssm_alpha.weight", "blk.0.ffn_gate_exps.weight"})
    EXPECT_NE(f->tensor(n), nullptr) << n;
  EXPECT_EQ(f->tensor("output.weight")->type, uint32_t(gg::GGML_TYPE_Q6_K));
  EXPECT_EQ(f->tensor("blk.0.attn_qkv.weight")->type, uint32_t(gg::GGML_TYPE_Q5_K));
  EXPECT_EQ(f->tensor("blk.1.attn_q.weight")->type, uint32_t(gg::GGML_TYPE_Q4_K));
  EXPECT_EQ(f->tensor("blk.0.ssm_conv1d.weight")->type, uint32_t(gg::GGML_TYPE_F32));
  EXPECT_EQ(f->tensor("blk.0.ssm_conv1d.weight")->ne[0], 4);
  // ssm_a holds -exp(A_log): all negative.
  const gg::TensorInfo* a = f->tensor("blk.0.ssm_a");
  for (int j = 0; j < a->ne[0]; ++j) EXPECT_LT(reinterpret_cast<const float*>(a->data)[j], 0.0f);
  // Loading through the C API.
  imp_model* model = nullptr;
  ASSERT_EQ(imp_model_load(&model, g.c_str(), nullptr), IMP_OK) << imp_last_error();
  imp_model_info info;
  info.size = sizeof info;
  ASSERT_EQ(imp_model_get_info(model, &info), IMP_OK);
  EXPECT_EQ(info.n_vocab, 96);
  EXPECT_EQ(info.n_mtp_layer, 1);
  EXPECT_EQ(info.n_layer_full, 2);
  imp_model_free(model);
}

// The fixtures from transformers (tests/fixtures/<name>) when present: F32 GGUF = SafeTensors.
TEST(GgufModel, FixturesF32Parity) {
  int found = 0;
  for (const char* name : {"qwen35_dense", "qwen35_moe", "qwen3_next"}) {
    const std::string dir = std::string(IMP_FIXTURES_DIR) + "/" + name;
    std::ifstream cfg(dir + "/config.json");
    if (!cfg) continue;
    ++found;
    TempDir d;
    const std::string g = d.file("f.gguf");
    gg::convert_hf_dir(dir, g, "f32");
    Logits ref = run(dir, kPrompt), got = run(g, kPrompt);
    expect_close(ref.main, got.main, 1e-5, std::string(name) + " main");
    if (!ref.mtp.empty()) expect_close(ref.mtp, got.mtp, 1e-5, std::string(name) + " MTP");
  }
  if (!found) GTEST_SKIP() << "no fixtures in " << IMP_FIXTURES_DIR;
  std::printf("F32 GGUF parity checked on %d transformers fixtures\n", found);
}

// The fuzzer's committed corpus, once, without sanitizers: every file parses or fails with a reader status.
TEST(GgufReader, FuzzCorpusRegression) {
  const std::string dir = std::string(IMP_SOURCE_DIR) + "/tests/fuzz/corpus_gguf";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(e.path(), std::ios::binary);
    std::string b((std::istreambuf_iterator<char>(f)), {});
    try {
      auto g = gg::File::parse(reinterpret_cast<const unsigned char*>(b.data()), b.size(), e.path().string());
      for (const gg::TensorInfo& t : g->tensors())
        if (t.nbytes) EXPECT_LE(t.data + t.nbytes, reinterpret_cast<const unsigned char*>(b.data()) + b.size());
    } catch (const imp::Error& err) {
      EXPECT_TRUE(err.status() == IMP_ERR_BAD_HEADER || err.status() == IMP_ERR_BAD_OFFSETS || err.status() == IMP_ERR_TENSOR_DTYPE)
          << err.what();
    }
    ++n;
  }
  EXPECT_GT(n, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile files: each malformed case gets its own status and a message that names it.

std::vector<unsigned char> f32_bytes(size_t n, float v = 1.0f) {
  std::vector<unsigned char> b(n * 4);
  for (size_t i = 0; i < n; ++i) std::memcpy(&b[i * 4], &v, 4);
  return b;
}

std::string valid_file() {
  gg::Writer w;
  w.add_string("general.architecture", "qwen35");
  w.add_u32("qwen35.block_count", 2);
  w.add_tensor("a.weight", {32, 2}, gg::GGML_TYPE_F32, f32_bytes(64));
  w.add_tensor("b.weight", {32}, gg::GGML_TYPE_F32, f32_bytes(32));
  return w.bytes();
}

void expect_parse_error(const std::string& bytes, imp_status want, const std::string& needle) {
  try {
    gg::File::parse(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), "test.gguf");
    ADD_FAILURE() << "parsed; expected " << imp_status_name(want) << " (" << needle << ")";
  } catch (const imp::Error& e) {
    EXPECT_EQ(e.status(), want) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Byte offsets inside valid_file(): the header fields come first.
constexpr size_t kVersionAt = 4, kTensorCountAt = 8, kKvCountAt = 16, kFirstKeyLenAt = 24;

template <typename T>
void poke(std::string& s, size_t at, T v) {
  std::memcpy(&s[at], &v, sizeof v);
}

size_t find_name(const std::string& s, const std::string& name) {
  size_t at = s.find(name);
  EXPECT_NE(at, std::string::npos);
  return at;
}

TEST(GgufReader, ParsesValidFileAndAllValueTypes) {
  gg::Writer w(64);
  w.add_u8("u8", 200);
  w.add_i32("i32", -5);
  w.add_u64("u64", 1ull << 40);
  w.add_f32("f32", 1.5f);
  w.add_f64("f64", -2.25);
  w.add_bool("bool", true);
  w.add_string("str", "hello");
  w.add_i32_array("ints", {1, -2, 3});
  w.add_string_array("strs", {"a", "bc", ""});
  // An array of arrays of u16: [[1, 2], [3]].
  std::string nested = gg::Writer::enc_u32(uint32_t(gg::ValueType::ARRAY)) + gg::Writer::enc_u64(2);
  auto arr_u16 = [](std::vector<uint16_t> v) {
    std::string s = gg::Writer::enc_u32(uint32_t(gg::ValueType::U16)) + gg::Writer::enc_u64(v.size());
    for (uint16_t x : v) s.append(reinterpret_cast<const char*>(&x), 2);
    return s;
  };
  nested += arr_u16({1, 2}) + arr_u16({3});
  w.add_raw("nested", uint32_t(gg::ValueType::ARRAY), nested);
  w.add_tensor("t", {64, 3}, gg::GGML_TYPE_Q8_0, std::vector<unsigned char>(2 * 3 * 34, 0));
  std::string b = w.bytes();
  auto f = gg::File::parse(reinterpret_cast<const unsigned char*>(b.data()), b.size(), "x");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find("u8")->u, 200u);
  EXPECT_EQ(*f->find("i32")->as_int(), -5);
  EXPECT_EQ(*f->find("u64")->as_int(), int64_t(1) << 40);
  EXPECT_EQ(f->find("f32")->f, 1.5);
  EXPECT_EQ(f->find("f64")->f, -2.25);
  EXPECT_EQ(f->find("bool")->u, 1u);
  EXPECT_EQ(f->find("str")->str, "hello");
  EXPECT_EQ(*f->find("ints")->int_at(1), -2);
  EXPECT_EQ(f->find("strs")->items.at(1).str, "bc");
  const gg::Value* n = f->find("nested");
  ASSERT_EQ(n->items.size(), 2u);
  EXPECT_EQ(*n->items[0].int_at(1), 2);
  EXPECT_EQ(*n->items[1].int_at(0), 3);
  const gg::TensorInfo* t = f->tensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->nbytes, 204u);
  EXPECT_EQ(t->ne[1], 3);
  // Version 2 files read the same.
  poke<uint32_t>(b, kVersionAt, 2);
  EXPECT_EQ(gg::File::parse(reinterpret_cast<const unsigned char*>(b.data()), b.size(), "x")->version(), 2u);
}

TEST(GgufReader, BadMagic) {
  std::string s = valid_file();
  s[0] = 'X';
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "bad magic");
  expect_parse_error("GG", IMP_ERR_BAD_HEADER, "too short");
}

TEST(GgufReader, BadVersion) {
  std::string s = valid_file();
  poke<uint32_t>(s, kVersionAt, 1);
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "version 1");
  poke<uint32_t>(s, kVersionAt, 4);
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "unsupported version 4");
  poke<uint32_t>(s, kVersionAt, 0x03000000);
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "big-endian");
}

TEST(GgufReader, HugeCounts) {
  std::string s = valid_file();
  poke<uint64_t>(s, kTensorCountAt, uint64_t(1) << 62);
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "tensor count");
  s = valid_file();
  poke<uint64_t>(s, kKvCountAt, ~uint64_t(0));
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "metadata count");
  // An array length no file could hold.
  gg::Writer w;
  w.add_raw("arr", uint32_t(gg::ValueType::ARRAY), gg::Writer::enc_u32(uint32_t(gg::ValueType::U64)) + gg::Writer::enc_u64(uint64_t(1) << 61));
  expect_parse_error(w.bytes(), IMP_ERR_BAD_HEADER, "runs past the end");
}

TEST(GgufReader, StringLengthPastEof) {
  std::string s = valid_file();
  poke<uint64_t>(s, kFirstKeyLenAt, uint64_t(s.size()));
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "length");
  s = valid_file();
  poke<uint64_t>(s, kFirstKeyLenAt, ~uint64_t(0));
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "runs past the end");
  // A string value.
  gg::Writer w;
  w.add_raw("s", uint32_t(gg::ValueType::STRING), gg::Writer::enc_u64(1000) + "abc");
  expect_parse_error(w.bytes(), IMP_ERR_BAD_HEADER, "string value length 1000");
}

TEST(GgufReader, TensorOffsetPastEof) {
  std::string s = valid_file();
  // The offset field follows "b.weight" (name), n_dims (4), ne[0] (8), type (4).
  size_t at = find_name(s, "b.weight") + 8 + 4 + 8 + 4;
  poke<uint64_t>(s, at, 1ull << 20);
  expect_parse_error(s, IMP_ERR_BAD_OFFSETS, "lies outside");
  poke<uint64_t>(s, at, ~uint64_t(0) - 31);  // aligned, and offset + size overflows
  expect_parse_error(s, IMP_ERR_BAD_OFFSETS, "lies outside");
  // Truncated data section.
  s = valid_file();
  expect_parse_error(s.substr(0, s.size() - 4), IMP_ERR_BAD_OFFSETS, "b.weight");
}

TEST(GgufReader, MisalignedData) {
  std::string s = valid_file();
  size_t at = find_name(s, "b.weight") + 8 + 4 + 8 + 4;
  uint64_t off;
  std::memcpy(&off, &s[at], 8);
  poke<uint64_t>(s, at, off + 4);
  expect_parse_error(s, IMP_ERR_BAD_OFFSETS, "not a multiple of the alignment");
  // general.alignment that is not a power of two.
  gg::Writer w;
  w.add_u32("general.alignment", 48);
  expect_parse_error(w.bytes(), IMP_ERR_BAD_HEADER, "general.alignment");
  gg::Writer w0;
  w0.add_string("general.alignment", "32");
  expect_parse_error(w0.bytes(), IMP_ERR_BAD_HEADER, "general.alignment");
}

TEST(GgufReader, UnknownTensorType) {
  std::string s = valid_file();
  size_t at = find_name(s, "b.weight") + 8 + 4 + 8;
  poke<uint32_t>(s, at, 4242);
  expect_parse_error(s, IMP_ERR_TENSOR_DTYPE, "unknown ggml type 4242");
  // Unknown metadata value type.
  gg::Writer w;
  w.add_raw("k", 77, "");
  expect_parse_error(w.bytes(), IMP_ERR_BAD_HEADER, "unknown value type 77");
}

TEST(GgufReader, DuplicateNames) {
  gg::Writer w;
  w.add_tensor("x", {32}, gg::GGML_TYPE_F32, f32_bytes(32));
  w.add_tensor("x", {32}, gg::GGML_TYPE_F32, f32_bytes(32));
  expect_parse_error(w.bytes(), IMP_ERR_BAD_HEADER, "duplicate tensor name \"x\"");
  gg::Writer k;
  k.add_u32("key", 1);
  k.add_u32("key", 2);
  expect_parse_error(k.bytes(), IMP_ERR_BAD_HEADER, "duplicate metadata key \"key\"");
}

TEST(GgufReader, TooManyDims) {
  std::string s = valid_file();
  poke<uint32_t>(s, find_name(s, "b.weight") + 8, 5);
  expect_parse_error(s, IMP_ERR_BAD_HEADER, "5 dimensions");
}

TEST(GgufReader, OverlapAndBlockSize) {
  std::string s = valid_file();
  // Point b.weight at a.weight's data.
  poke<uint64_t>(s, find_name(s, "b.weight") + 8 + 4 + 8 + 4, 0);
  expect_parse_error(s, IMP_ERR_BAD_OFFSETS, "overlap");
  gg::Writer w;
  w.add_raw("pad", uint32_t(gg::ValueType::U8), std::string(1, '\0'));
  std::string b = w.bytes();
  // A Q4_K tensor whose rows are not a multiple of 256 (hand-built tensor info).
  gg::Writer q;
  q.add_tensor("q", {256}, gg::GGML_TYPE_Q4_K, std::vector<unsigned char>(144, 0));
  std::string qs = q.bytes();
  poke<uint64_t>(qs, find_name(qs, "q") + 1 + 4, 128);
  expect_parse_error(qs, IMP_ERR_BAD_HEADER, "not a multiple of the Q4_K block size");
}

TEST(GgufReader, EveryTruncationIsRejected) {
  const std::string s = valid_file();
  for (size_t n = 0; n < s.size(); ++n) {
    // Cutting only zero padding after the last tensor's data would still be a valid file; the data ends exactly
    // at the end here, so every shorter prefix must fail cleanly (never crash).
    try {
      gg::File::parse(reinterpret_cast<const unsigned char*>(s.data()), n, "t");
      ADD_FAILURE() << "prefix of " << n << " bytes parsed";
    } catch (const imp::Error& e) {
      EXPECT_TRUE(e.status() == IMP_ERR_BAD_HEADER || e.status() == IMP_ERR_BAD_OFFSETS) << n << ": " << e.what();
    }
  }
}

TEST(GgufReader, DeepNestingIsBounded) {
  std::string v;
  for (int i = 0; i < 20; ++i) v += gg::Writer::enc_u32(uint32_t(gg::ValueType::ARRAY)) + gg::Writer::enc_u64(1);
  v += gg::Writer::enc_u32(uint32_t(gg::ValueType::U8)) + gg::Writer::enc_u64(0);
  gg::Writer w;
  w.add_raw("deep", uint32_t(gg::ValueType::ARRAY), v.substr(0));
  expect_parse_error(w.bytes(), IMP_ERR_BAD_HEADER, "nested deeper");
}

// Through imp_model_load: the file's own error, and model-level checks.
void expect_load_error(const std::string& path, imp_status want, const std::string& needle) {
  imp_model* model = reinterpret_cast<imp_model*>(0x1);
  imp_status st = imp_model_load(&model, path.c_str(), nullptr);
  EXPECT_EQ(st, want) << imp_status_name(st) << ": " << imp_last_error();
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(imp_last_error()).find(needle), std::string::npos) << imp_last_error();
}

TEST(GgufModel, LoadErrors) {
  TempDir d;
  imp::test::write_text(d.file("bad.gguf"), "NOPE, not a gguf file at all");
  expect_load_error(d.file("bad.gguf"), IMP_ERR_BAD_HEADER, "bad magic");
  imp::test::write_text(d.file("other.bin"), "NOPE");
  expect_load_error(d.file("other.bin"), IMP_ERR_NOT_FOUND, "neither a directory nor a GGUF file");
  {
    gg::Writer w;
    w.add_string("general.architecture", "llama");
    w.write(d.file("llama.gguf"));
    expect_load_error(d.file("llama.gguf"), IMP_ERR_UNKNOWN_ARCH, "\"llama\"");
  }
  {
    gg::Writer w;
    w.add_u32("x", 1);
    w.write(d.file("noarch.gguf"));
    expect_load_error(d.file("noarch.gguf"), IMP_ERR_BAD_CONFIG, "general.architecture");
  }
  // A real model with one tensor of a type libimp does not compute with (Q4_0) and one missing tensor.
  imp::test::write_tiny_model(d.path(), opts(false));
  gg::convert_hf_dir(d.path(), d.file("m.gguf"), "f32");
  auto f = gg::File::open(d.file("m.gguf"));
  auto rewrite = [&](const std::string& out, const std::string& drop, const std::string& q4_0) {
    gg::Writer w;
    for (size_t k = 0; k < f->metadata().size(); ++k)
      w.add_raw(f->metadata()[k].first, uint32_t(f->metadata()[k].second.type), f->raw_value(k));
    for (const gg::TensorInfo& t : f->tensors()) {
      if (t.name == drop) continue;
      std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
      if (t.name == q4_0) w.add_tensor(t.name, ne, gg::GGML_TYPE_Q4_0, std::vector<unsigned char>(size_t(t.n_elements()) / 32 * 18, 0));
      else w.add_tensor(t.name, ne, t.type, std::vector<unsigned char>(t.data, t.data + t.nbytes));
    }
    w.write(out);
  };
  rewrite(d.file("q40.gguf"), "", "blk.1.attn_k.weight");
  expect_load_error(d.file("q40.gguf"), IMP_ERR_TENSOR_DTYPE, "Q4_0");
  rewrite(d.file("missing.gguf"), "blk.2.ssm_out.weight", "");
  expect_load_error(d.file("missing.gguf"), IMP_ERR_MISSING_TENSOR, "blk.2.ssm_out.weight");
}

}  // namespace
