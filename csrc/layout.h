// One vector pass over a text that finds what steps, words and answers need.
// It leaves bit masks, one word per 64-byte block, rather than lists of
// offsets: where units, lines and paragraphs start is found for all 64 bytes
// at once by carry propagation (layout_blocks.h). Unit starts and the rare
// answer hints become lists of offsets instead, which the analyzer walks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "slots.h"

namespace cotsieve {

// Ascending byte offsets. The vector pass writes through a raw pointer, with
// room made ahead for a batch of blocks by `reserve_more` and the size set
// after it by `grow_to`: no capacity check per offset.
class Offsets {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint64_t operator[](size_t i) const { return store_[i]; }
  const uint64_t* begin() const { return store_.data(); }
  const uint64_t* end() const { return store_.data() + size_; }

  void clear() { size_ = 0; }
  // Room for `extra` more slots; returns where the next one goes.
  uint64_t* reserve_more(size_t extra) {
    if (store_.size() < size_ + extra) store_.resize(size_ + extra);  // capacity still grows geometrically
    return store_.data() + size_;
  }
  void grow_to(const uint64_t* new_end) { size_ = static_cast<size_t>(new_end - store_.data()); }
  // Adds `by` to the offsets from index `first` on.
  void shift_from(size_t first, uint64_t by) {
    for (size_t k = first; k < size_; ++k) store_[k] += by;
  }

 private:
  std::vector<uint64_t> store_;
  size_t size_ = 0;
};

// Which starts begin steps: units (sentence mode), lines, or paragraphs
// (paragraph and marker modes).
enum class StepStarts : int { kUnits = 0, kLines = 1, kParagraphs = 2 };

// What one 64-byte block holds; bit j is byte j of the block. A unit is a
// maximal run of text between cuts (LFs and sentence ends), trimmed of
// whitespace; docs/metrics.md defines units, lines and paragraphs.
struct BlockBits {
  uint64_t text;          // bytes that are not whitespace
  uint64_t step;          // first byte of a step (a unit, line or paragraph, as chosen)
  uint64_t opening;       // one past an LF, or a sentence end: where an opening sentence may end
  uint64_t steps_before;  // step bits in the blocks before this one
  uint64_t openings_before;  // opening bits in the blocks before this one
};

// The blocks of one text: the pass writes every block.
using Blocks = Slots<BlockBits>;

struct Layout {
  Blocks blocks;        // ceil(n / 64) of them
  Offsets unit_starts;  // first bytes of the units (units are defined at BlockBits)
  Offsets answer_hints; // offsets of "\bo", "\fb" and case-folded "answ"
  uint64_t words = 0;   // maximal runs of non-whitespace bytes
};

void compute_layout(const uint8_t* text, uint64_t n, StepStarts steps, Layout& out);

}  // namespace cotsieve
