// Test support: comparing float arrays against a reference, and building MTP batches.
#pragma once

#include "engine/forward.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace imp::test {

// max |a - b| / max |b| (the tolerance unit of every golden test); a NaN or infinity in a fails as +inf.
inline double rel_err(const float* a, const float* b, size_t n) {
  double mx = 0, d = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    mx = std::max(mx, std::fabs(double(b[i])));
    d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  }
  return mx > 0 ? d / mx : d;
}

// An MTP batch over rows pos0..pos0+n-1 (row i fed tokens[i] and hidden row i) asking for the logits of every row
// listed in rows (n_rows of them) and the h_mtp of every row.
inline MtpBatch mtp_batch(const int32_t* tokens, const float* hidden, int n, int pos0, const int32_t* rows, int n_rows,
                          float* logits, float* hidden_out) {
  MtpBatch b;
  b.tokens = tokens;
  b.hidden = hidden;
  b.n = n;
  b.pos0 = pos0;
  b.logit_rows = rows;
  b.n_logit_rows = n_rows;
  b.logits = logits;
  b.hidden_out = hidden_out;
  return b;
}

}  // namespace imp::test
