// Where the GPU time of a forward goes, phase by phase, for imp-bench's per-kernel split of a decode step.
// When enabled, the forward pass records a CUDA event on its stream at the start of each phase (mark("name"))
// and once at the end (mark(nullptr)); after the stream synchronisation collect() adds the time between each
// mark and the next to that phase's total. Off by default, and then mark() is one branch. The events sit between
// kernels of one stream, so they time the kernels plus their launch gaps; the eager path is what gets timed.
#pragma once

#include "cuda/check.h"

#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace imp::cuda {

class PhaseTimer {
 public:
  PhaseTimer() = default;
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;
  ~PhaseTimer() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }

  bool on() const { return on_; }
  void enable(bool on) {
    on_ = on;
    n_ = 0;
  }

  void mark(const char* phase, cudaStream_t stream) {
    if (!on_) return;
    if (n_ == events_.size()) {
      cudaEvent_t e;
      check(cudaEventCreate(&e), "cudaEventCreate");
      events_.push_back(e);
      names_.push_back(nullptr);
    }
    names_[n_] = phase;
    check(cudaEventRecord(events_[n_], stream), "cudaEventRecord");
    ++n_;
  }

  // After the stream has synchronised: adds the closed intervals to the totals. The last mark stays open (a
  // synchronisation inside a phase, as lm_head's, does not end it).
  void collect() {
    if (!on_ || n_ == 0) return;
    for (size_t i = 0; i + 1 < n_; ++i) {
      if (!names_[i]) continue;
      float ms = 0;
      check(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]), "cudaEventElapsedTime");
      totals_[names_[i]] += ms;
    }
    std::swap(events_[0], events_[n_ - 1]);
    std::swap(names_[0], names_[n_ - 1]);
    n_ = names_[0] ? 1 : 0;
  }

  const std::map<std::string, double>& totals_ms() const { return totals_; }
  void clear() { totals_.clear(); }

 private:
  bool on_ = false;
  size_t n_ = 0;
  std::vector<cudaEvent_t> events_;
  std::vector<const char*> names_;
  std::map<std::string, double> totals_;
};

}  // namespace imp::cuda
