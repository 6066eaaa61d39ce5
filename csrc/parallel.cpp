#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace cotsieve {

int worker_count(int requested, size_t n_tasks) {
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int n = requested > 0 ? requested : hw;
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(n, std::max<size_t>(1, n_tasks))));
}

void parallel_for(size_t n_tasks, int workers, const std::function<void(int worker, size_t task)>& task) {
  if (n_tasks == 0) return;
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](int worker) {
    try {
      for (size_t i; (i = next.fetch_add(1)) < n_tasks;) task(worker, i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(n_tasks);  // stop the other workers early
    }
  };
  const int n = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(workers, 1)), n_tasks));
  std::vector<std::thread> pool;
  for (int w = 1; w < n; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace cotsieve
