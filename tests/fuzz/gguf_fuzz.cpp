// libFuzzer target for the GGUF reader: any input either parses or throws imp::Error; nothing may read out of
// bounds, overflow, hang or leak. On success every metadata value and every tensor's extent is touched (the
// first and last data byte, and the first rows of types libimp dequantizes).
#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf/quants.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {
volatile double g_sink;

void touch(const imp::gguf::Value& v) {
  double s = double(v.u) + double(v.i) + v.f + double(v.str.size());
  if (v.raw)
    for (uint64_t k = 0; k < v.n; ++k)
      if (auto x = v.number_at(k)) s += *x;
  for (const auto& item : v.items) touch(item);
  g_sink = s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = imp::gguf::File::parse(data, size, "fuzz");
    for (const auto& kv : f->metadata()) touch(kv.second);
    for (size_t k = 0; k < f->metadata().size(); ++k) g_sink = double(f->raw_value(k).size());
    std::vector<float> buf;
    for (const auto& t : f->tensors()) {
      if (t.nbytes == 0) continue;
      g_sink = double(t.data[0]) + double(t.data[t.nbytes - 1]);
      const size_t n = size_t(std::min<int64_t>(t.n_elements(), 1024));
      const imp::gguf::TypeTraits* tt = imp::gguf::type_traits(t.type);
      const size_t whole = n / tt->block * tt->block;  // values in whole blocks that lie inside the tensor
      if (whole == 0) continue;
      buf.resize(whole);
      switch (t.type) {
        case imp::gguf::GGML_TYPE_Q8_0: imp::gguf::dequantize_q8_0(t.data, buf.data(), whole); break;
        case imp::gguf::GGML_TYPE_Q4_K: imp::gguf::dequantize_q4_k(t.data, buf.data(), whole); break;
        case imp::gguf::GGML_TYPE_Q5_K: imp::gguf::dequantize_q5_k(t.data, buf.data(), whole); break;
        case imp::gguf::GGML_TYPE_Q6_K: imp::gguf::dequantize_q6_k(t.data, buf.data(), whole); break;
        default: break;
      }
      if (!buf.empty()) g_sink = buf[0];
    }
  } catch (const imp::Error&) {
  }
  return 0;
}
