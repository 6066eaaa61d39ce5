// A SIMD prefilter that finds the few positions where a pattern may start.
//
// Each pattern goes to one of 16 buckets (8 for sets of at most 12
// patterns). For the first four bytes of the patterns, a 128-entry table
// per position maps a (case-folded) text byte to the buckets whose patterns
// accept that byte there; ANDing the four lookups
// leaves the buckets that may match at each position. Buckets whose patterns
// need a word boundary before them are also cleared wherever the previous
// byte is a word byte. On English reasoning text this leaves roughly one
// position in tens of bytes for the exact check, which walks the trie.
//
// The lookups use AVX-512 VBMI (vpermi2b) where the CPU has it, and else
// AVX2, with each table split into two nibble tables (prefilter_windows.h),
// which pass a few more positions; `available()` says whether this CPU has
// either. The filter never misses a start: every byte >= 0x80 is looked up
// under one shared index, and past a short pattern's end a position accepts
// any byte, or any non-word byte right after a pattern that needs a word
// boundary there.
#pragma once

#include <cstdint>
#include <vector>

#include "automaton.h"
#include "prefilter_windows.h"

namespace cotsieve {

class Prefilter {
 public:
  static constexpr int kWindow = kPrefilterWindow;
  static bool available();

  explicit Prefilter(const std::vector<PatternSpec>& patterns);

  // For each window w in [0, count): bit i of masks[w] is set if a pattern
  // may start at pos + 64 * w + i, and low[64 * w + i] / high[...] hold the
  // buckets (0-7 / 8-15) that may match there. Windows must lie inside the
  // text. Without two_halves() `high` may be left unwritten: read it as zero.
  void window_masks(const uint8_t* text, uint64_t n, uint64_t pos, size_t count, uint64_t* masks, uint8_t* low,
                    uint8_t* high) const;

  // Whether there are more than 8 buckets: sets of at most 12 patterns
  // share 8 and need only the low bucket bytes.
  bool two_halves() const { return n_buckets_ > 8; }

  // Patterns of a bucket, longest first, then by index: the first valid one
  // is the bucket's best at a position.
  const std::vector<int32_t>& bucket(int b) const { return buckets_[b]; }

 private:
  static constexpr int kPositions = kPrefilterPositions;
  alignas(64) uint8_t table_[2][kPositions][128];  // [bucket half][byte position][lower-cased byte, >= 0x80 at 0x7f]
  uint8_t needs_word_start_[2] = {0, 0};          // bucket bits, per half
  NibbleTables nibbles_;                          // the same tables, for the AVX2 kernel
  std::vector<int32_t> buckets_[16];
  size_t n_buckets_ = 1;
  size_t patterns_count_ = 0;

  // `word_start`: whether the AVX2 kernel clears needs_word_start_ buckets itself.
  void build_nibble_tables(bool word_start);
  void window_masks_vbmi(const uint8_t* text, uint64_t n, uint64_t pos, size_t count, uint64_t* masks,
                         uint8_t* low, uint8_t* high) const;
};

}  // namespace cotsieve
