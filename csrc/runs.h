// Backward scans over runs of one byte class, shared by the anchor checks of
// the scanner and the step cutter of the analyzer.
#pragma once

#include <array>
#include <cstdint>

#include "bytes.h"

namespace cotsieve {

// Start of the run of `member` bytes that ends at `x`. Remembers the last run
// it found, so that many queries inside one long run (say, a megabyte of
// spaces) cost linear time overall instead of quadratic.
struct RunCache {
  uint64_t lo = 0, hi = 0;
  bool valid = false;

  uint64_t run_start(const uint8_t* t, uint64_t x, const std::array<bool, 256>& member) {
    // Inside the remembered run: candidates can arrive out of order (the DFA
    // reports longer patterns that start earlier), and must not rescan it.
    if (valid && lo <= x && x <= hi) return lo;
    bool reuse = valid && hi <= x;
    uint64_t floor = reuse ? hi : 0;
    uint64_t i = x;
    while (i > floor && member[t[i - 1]]) --i;
    if (reuse && i == floor) i = lo;
    lo = i;
    hi = x;
    valid = true;
    return i;
  }
};

// The sentence_start condition of docs/semantics.md at `pos`; `line` and
// `space` remember runs across calls on the same text.
inline bool line_start_at(const uint8_t* t, uint64_t pos, RunCache& line) {
  uint64_t r = line.run_start(t, pos, kBytes.line_prefix);
  return r == 0 || t[r - 1] == '\n';
}

inline bool sentence_start_at(const uint8_t* t, uint64_t pos, RunCache& line, RunCache& space) {
  if (line_start_at(t, pos, line)) return true;
  uint64_t r = space.run_start(t, pos, kBytes.whitespace);
  return r < pos && r > 0 && kBytes.sentence_end[t[r - 1]];
}

}  // namespace cotsieve
