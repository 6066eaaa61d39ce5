// One vector pass over a text that finds what steps, words and answers need:
// LFs, sentence ends, word starts, and the few places an answer may begin.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

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
  void push_back(uint64_t offset) {
    reserve_more(1);
    store_[size_++] = offset;
  }
  // Room for `extra` more slots; returns where the next one goes.
  uint64_t* reserve_more(size_t extra) {
    if (store_.size() < size_ + extra) store_.resize(size_ + extra);  // capacity still grows geometrically
    return store_.data() + size_;
  }
  void grow_to(const uint64_t* new_end) { size_ = static_cast<size_t>(new_end - store_.data()); }

 private:
  std::vector<uint64_t> store_;
  size_t size_ = 0;
};

struct Layout {
  Offsets newlines;       // offsets of LF
  Offsets sentence_ends;  // offset just past a . ! ? followed by whitespace or the end
  Offsets answer_hints;   // offsets of "\bo", "\fb" and case-folded "answ"
  uint64_t words = 0;     // maximal runs of non-whitespace bytes
};

void compute_layout(const uint8_t* text, uint64_t n, Layout& out);

}  // namespace cotsieve
