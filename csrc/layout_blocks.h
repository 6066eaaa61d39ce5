// The block loop that every vector layout path shares (csrc/layout_*.cpp).
// A path supplies a classifier that turns 64 bytes into the bit masks below;
// the loop turns the masks into offsets and the word count.
//
// Each path's file is compiled with its own instruction set, so nothing here
// may have vague linkage: the linker keeps one copy of an inline function or
// template instance from any file, and could hand an AVX-512 copy to a CPU
// that only has AVX2. Hence raw pointers in and out (the lists grow in
// layout.cpp), and the loop in an anonymous namespace.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cotsieve {

// What the 64 bytes from a block's start are; bit j is byte j. A classifier
// may read up to three bytes past the block, for the look-ahead.
struct BlockMasks {
  uint64_t space;  // whitespace
  uint64_t lf;     // LF
  uint64_t end;    // . ! ? followed by whitespace (the offset stored is one past it)
  uint64_t hint;   // "\bo", "\fb" or case-folded "answ" starts here
};

constexpr uint64_t kBlockBytes = 64;
constexpr uint64_t kLookahead = 3;
// Blocks per batch: each list gets room for a whole batch before it, so the
// block loop never calls out (a call would spill every constant register),
// and a list keeps at most a batch's worth of spare slots.
constexpr uint64_t kBatchBlocks = 64;
constexpr size_t kBatchSlots = kBlockBytes * kBatchBlocks;
// A path may store a few slots past its last offset (they are overwritten or
// left beyond the list's size): room for them too.
constexpr size_t kSpareSlots = 8;

// Whitespace and . ! ? have distinct low nibbles, so one byte shuffle finds
// all seven: at each nibble, the one byte of the set with that nibble (0xFF
// where none; the shuffle turns bytes >= 0x80 into 0, which never match).
// The set's whitespace is exactly its bytes below '!'. Loaded by each
// classifier when it is built, not held in a vector global, which would be
// built when the library loads, on any CPU.
alignas(16) constexpr uint8_t kNotableByNibble[16] = {' ',  '!',  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                                      0xFF, '\t', '\n', 0xFF, 0xFF, '\r', '.', '?'};

struct LayoutCursors {
  uint64_t *lfs, *ends, *hints;  // where each list's next offset goes
  uint64_t words;                // words started so far
  uint64_t after_space;          // 1 when the byte before the next block is whitespace
};

// Up to kBatchBlocks whole blocks from offset `i`, each with its look-ahead
// inside the text; returns where it stopped. Call each only where
// simd_level() allows it.
uint64_t layout_batch_avx512(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to);
uint64_t layout_batch_avx2(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to);

namespace {

// Stores base + the index of each set bit at `to`, and returns the new end.
// (Writing a fixed four slots per block to avoid this loop's mispredicts was
// measured slower.)
inline uint64_t* put_bits(uint64_t mask, uint64_t base, uint64_t* to) {
  for (; mask != 0; mask &= mask - 1) *to++ = base + static_cast<uint64_t>(__builtin_ctzll(mask));
  return to;
}

template <class Classifier>
uint64_t layout_batch(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to, const Classifier& classify) {
  // Locals, so the cursors live in registers.
  uint64_t *lfs = to.lfs, *ends = to.ends, *hints = to.hints;
  uint64_t words = 0, after_space = to.after_space;
  for (uint64_t k = 0; k < kBatchBlocks && i + kBlockBytes + kLookahead <= n; ++k, i += kBlockBytes) {
    const BlockMasks m = classify(t + i);
    words += static_cast<uint64_t>(__builtin_popcountll(~m.space & ((m.space << 1) | after_space)));
    after_space = m.space >> 63;
    lfs = classify.put(m.lf, i, lfs);
    ends = classify.put(m.end, i + 1, ends);
    hints = classify.put(m.hint, i, hints);
  }
  to = {lfs, ends, hints, to.words + words, after_space};
  return i;
}

}  // namespace
}  // namespace cotsieve
