// The one parallel loop of the engine: the scanner's blocks and, through
// the scanner, the analyzer's texts run on it.
#pragma once

#include <cstddef>
#include <functional>

namespace cotsieve {

// Number of worker threads a loop over `n_tasks` would use for `requested`
// (<= 0 means one per hardware thread).
int worker_count(int requested, size_t n_tasks);

// Calls `task(worker, i)` for every i in [0, n_tasks) on at most `workers`
// threads, the calling thread included. Tasks are handed out in increasing
// order, so one worker sees its tasks in increasing order. The first
// exception thrown by a task stops the others early and is rethrown here.
void parallel_for(size_t n_tasks, int workers, const std::function<void(int worker, size_t task)>& task);

}  // namespace cotsieve
