// The block loop that every layout path shares (csrc/layout*.cpp). A path
// supplies a classifier that turns 64 bytes into the byte classes below; the
// loop turns them into each block's BlockBits, the word count and the answer
// hints' offsets.
//
// Each path's file is compiled with its own instruction set, so nothing here
// may have vague linkage: the linker keeps one copy of an inline function or
// template instance from any file, and could hand an AVX-512 copy to a CPU
// that only has AVX2. Hence raw pointers in and out (the lists grow in
// layout.cpp), and the loop in an anonymous namespace.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layout.h"

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

// What a block needs to know of the ones before it: each a bit that crosses
// the block edge. The initial values make the text start act as a cut and as
// a blank line, so that the first non-whitespace byte starts a unit, a line
// and a paragraph.
struct LayoutCarry {
  uint64_t after_space = 1;  // the byte before is whitespace
  uint64_t end = 0;          // the byte before ends a sentence
  uint64_t lf = 0;           // the byte before is LF
  uint64_t unit = 1, line = 1, paragraph = 1, blank = 0;  // carries of the additions below
  uint64_t steps = 0, openings = 0;  // step and opening bits so far
};

struct LayoutCursors {
  BlockBits* blocks;  // where the next block's bits go
  uint64_t* hints;    // where the next answer hint goes
  uint64_t* units;    // where the next unit start goes
  StepStarts step_starts;
  uint64_t words;
  LayoutCarry carry;
};

uint64_t layout_batch_avx512(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to);
uint64_t layout_batch_avx2(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to);

namespace {

// Stores base + the index of each set bit at `to`, and returns the new end.
// The first kFewBits slots are written whatever the count, by a loop of
// fixed length, and only a mask with more bits goes on to the bit loop,
// whose test then nearly always fails at once. A bit loop alone mispredicted
// its exit about once a block, as units start 0 to 3 times in a block of the
// real traces: the layout pass is 15% faster so (benchmarks/RESULTS.md).
// Slots past the count lie beyond the list's end, in its spare slots.
constexpr int kFewBits = 3;
inline uint64_t* put_bits(uint64_t mask, uint64_t base, uint64_t* to) {
  const uint64_t count = static_cast<uint64_t>(__builtin_popcountll(mask));
  for (int j = 0; j < kFewBits; ++j) {
    to[j] = base + static_cast<uint64_t>(__builtin_ctzll(mask | uint64_t{1} << 63));  // bit 63: mask may be 0
    mask &= mask - 1;
  }
  for (uint64_t* rest = to + kFewBits; mask != 0; mask &= mask - 1)
    *rest++ = base + static_cast<uint64_t>(__builtin_ctzll(mask));
  return to + count;
}

// The first non-whitespace byte after every whitespace run that holds a bit
// of `marks` (marks lie on whitespace). Adding a mark to its run carries
// through the rest of the run and lands on the byte after it; a run without
// a mark adds nothing. The carry crosses block edges like any other.
//
// The carry in is OR-ed into the marks rather than added by an add with
// carry: GCC 12 sent each carry of _addcarry_u64 through the stack, and the
// analysis pass is about 0.7 ms faster on the real traces without that
// (benchmarks/RESULTS.md). The OR gives the same result. Where byte 0 is not
// whitespace it holds no mark, so OR is addition. Where it is whitespace, a
// mark and a carry there add 2 instead of 3: the carry into byte 1 is the
// same either way, and byte 0 itself is masked off.
inline uint64_t after_marked_runs(uint64_t space, uint64_t marks, uint64_t& carry) {
  uint64_t sum;
  carry = __builtin_add_overflow(space, marks | carry, &sum);
  return sum & ~space;
}

// Bits of one block from its byte classes and the carries of the blocks
// before it. Units start after a run that holds a cut (an LF, or the byte
// after a sentence end), lines after a run that holds an LF, paragraphs after
// a run that holds a blank line: an LF whose run of other whitespace back to
// the LF before it is whole. That LF is found the same way, by adding a mark
// one past each LF to the runs of whitespace other than LF.
// Returns the unit starts, which go out as a list.
inline uint64_t block_bits(const BlockMasks& m, StepStarts step_starts, LayoutCarry& c, BlockBits& out) {
  const uint64_t after_end = (m.end << 1) | c.end, after_lf = (m.lf << 1) | c.lf;
  c.end = m.end >> 63;
  c.lf = m.lf >> 63;
  const uint64_t unit = after_marked_runs(m.space, m.lf | after_end, c.unit);
  uint64_t step = unit;
  if (step_starts == StepStarts::kLines) step = after_marked_runs(m.space, m.lf, c.line);
  if (step_starts == StepStarts::kParagraphs) {
    const uint64_t blank_lines = after_marked_runs(m.space & ~m.lf, after_lf, c.blank) & m.lf;
    step = after_marked_runs(m.space, blank_lines, c.paragraph);
  }
  // Field by field: a whole struct built first went through the stack.
  out.text = ~m.space;
  out.step = step;
  out.opening = after_lf | after_end;
  out.steps_before = c.steps;
  out.openings_before = c.openings;
  c.steps += static_cast<uint64_t>(__builtin_popcountll(step));
  c.openings += static_cast<uint64_t>(__builtin_popcountll(out.opening));
  return unit;
}

template <class Classifier>
uint64_t layout_batch(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to, const Classifier& classify) {
  // Locals, so the cursors live in registers.
  BlockBits* blocks = to.blocks;
  uint64_t *hints = to.hints, *units = to.units;
  uint64_t words = 0;
  LayoutCarry carry = to.carry;
  for (uint64_t k = 0; k < kBatchBlocks && i + kBlockBytes + kLookahead <= n; ++k, i += kBlockBytes) {
    const BlockMasks m = classify(t + i);
    words += static_cast<uint64_t>(__builtin_popcountll(~m.space & ((m.space << 1) | carry.after_space)));
    carry.after_space = m.space >> 63;
    units = classify.put(block_bits(m, to.step_starts, carry, *blocks++), i, units);
    // Hints are rare: a branch that is nearly always right costs less than
    // a store per block.
    if (__builtin_expect(m.hint != 0, 0)) hints = classify.put(m.hint, i, hints);
  }
  to = {blocks, hints, units, to.step_starts, to.words + words, carry};
  return i;
}

}  // namespace
}  // namespace cotsieve
