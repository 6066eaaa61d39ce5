// What the prefilter's vector kernels share (csrc/prefilter.cpp,
// csrc/prefilter_avx2.cpp). The AVX2 kernel's file is compiled with -mavx2,
// so, as in layout_blocks.h, nothing here has vague linkage: plain data in,
// raw pointers out, and the helper in an anonymous namespace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cotsieve {

constexpr int kPrefilterWindow = 64;
constexpr int kPrefilterPositions = 4;  // pattern bytes the filter looks at

// The AVX2 form of the prefilter's 128-entry byte tables. A text byte is
// split into its low and high nibble, and a bucket passes at a position if
// it is in both nibbles' entries. Each entry is the OR of the buckets that
// accept some byte with that nibble (both cases of a caseless letter), so
// the pair passes every byte the table passes, and some more: the filter
// stays exact, only less selective, and the kernel needs no case folding.
// Bytes >= 0x80 are looked up as 0x7f (the table's shared entry for them);
// where no bucket accepts them, the lean kernel indexes with the raw byte,
// and the byte shuffle gives no bucket for them by itself.
// Rows are 32 bytes, one copy per 128-bit lane.
struct NibbleTables {
  alignas(32) uint8_t low[2][kPrefilterPositions][32];  // [bucket half][byte position][byte & 15]
  alignas(32) uint8_t high[2][kPrefilterPositions][32];  // [bucket half][byte position][byte >> 4]
  uint8_t word_start[2];  // per bucket half, the buckets cleared after a word byte
  bool two_halves;        // more than 8 buckets; else `high` is not written
  bool one_per_bucket;    // every bucket holds one pattern
  bool ascii_only;        // no bucket accepts a byte >= 0x80 at any position
};

// Window masks as Prefilter::window_masks documents them. Call only where
// simd_level() allows AVX2.
void prefilter_windows_avx2(const NibbleTables& tables, const uint8_t* text, uint64_t n, uint64_t pos, size_t count,
                            uint64_t* masks, uint8_t* low, uint8_t* high);

namespace {

// A window reads one byte before it and kPrefilterPositions - 1 bytes past it.
constexpr uint64_t kPrefilterSpan = kPrefilterWindow + kPrefilterPositions;

// Where the kernel reads the window at `pos` from: the text itself, or, at
// the text's ends, `padded` (kPrefilterSpan + 64 bytes), holding the
// window's bytes with zeros past the end and a space before the text start.
inline const uint8_t* window_source(const uint8_t* text, uint64_t n, uint64_t pos, uint8_t* padded) {
  if (pos >= 1 && pos + kPrefilterSpan - 1 <= n) return text + pos - 1;
  std::memset(padded, 0, kPrefilterSpan + 64);
  padded[0] = pos >= 1 ? text[pos - 1] : ' ';
  const uint64_t left = n - pos;  // no std::min: a template instance here would have vague linkage
  std::memcpy(padded + 1, text + pos, left < kPrefilterSpan - 1 ? left : kPrefilterSpan - 1);
  return padded;
}

// The mask's bits past the text's end are cleared.
inline uint64_t inside_text(uint64_t mask, uint64_t n, uint64_t pos) {
  return n - pos < kPrefilterWindow ? mask & ((uint64_t(1) << (n - pos)) - 1) : mask;
}

}  // namespace
}  // namespace cotsieve
