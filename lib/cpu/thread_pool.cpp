#include "cpu/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define IMP_PAUSE() _mm_pause()
#else
#define IMP_PAUSE() std::this_thread::yield()
#endif

namespace imp {

namespace {
// A short spin: long enough to catch the next matmul of a decode step, short enough not to steal a core from
// other threads when the machine is oversubscribed.
constexpr int kSpinIterations = 4000;

inline void chunk_range(int n, int chunks, int c, int* b, int* e) {
  *b = int(int64_t(n) * c / chunks);
  *e = int(int64_t(n) * (c + 1) / chunks);
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::parallel_for(int n, const std::function<void(int, int)>& fn, int grain) {
  if (n <= 0) return;
  int chunks = std::min(n_threads_, std::max(1, n / std::max(1, grain)));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    pending_.store(chunks - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  int b, e;
  chunk_range(n, chunks, 0, &b, &e);
  fn(b, e);
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations) IMP_PAUSE();
    else std::this_thread::yield();
  }
}

void ThreadPool::worker(int index) {
  int seen = 0;
  for (;;) {
    // Spin for the next job, then sleep.
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      IMP_PAUSE();
      ++spins;
    }
    const std::function<void(int, int)>* job;
    int n, chunks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      if (stop_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      job = job_;
      n = job_n_;
      chunks = job_chunks_;
    }
    if (index < chunks) {
      int b, e;
      chunk_range(n, chunks, index, &b, &e);
      (*job)(b, e);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace imp
