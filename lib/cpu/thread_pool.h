// A fixed pool of worker threads for data-parallel loops. parallel_for splits [0, n) into contiguous chunks,
// one per thread (the caller's thread takes one too), and returns when all are done. Results never depend on
// the number of threads: each index is computed by exactly one thread in a fixed order.
//
// A decode step of a small model issues hundreds of short loops, so hand-offs must cost microseconds, not the
// tens of microseconds of a condition-variable wake-up: workers spin briefly on the job counter before sleeping,
// and the caller spins while the last chunks finish.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace imp {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // 0 = hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // fn(begin, end) over chunks of [0, n); chunks are at least `grain` long.
  void parallel_for(int n, const std::function<void(int, int)>& fn, int grain = 1);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  int job_n_ = 0, job_chunks_ = 0;
  std::atomic<int> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace imp
