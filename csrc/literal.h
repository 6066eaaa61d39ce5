// A pattern compiled for direct comparison: 8-byte chunks with an OR mask
// that folds ASCII letters, so one compare checks eight bytes in either case.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "automaton.h"
#include "bytes.h"

namespace cotsieve {

class Literal {
 public:
  explicit Literal(const PatternSpec& p)
      : len_(p.bytes.size()), needs_word_start_(p.boundary_start && kBytes.word[static_cast<uint8_t>(p.bytes[0])]) {
    for (size_t off = 0; off < len_; off += 8) {
      uint8_t want[8] = {}, fold[8] = {}, keep[8] = {};
      for (size_t j = 0; j < 8 && off + j < len_; ++j) {
        const uint8_t c = static_cast<uint8_t>(p.bytes[off + j]);
        const bool letter = kBytes.fold[c] != c || (c >= 'a' && c <= 'z');
        const bool folds = letter && !p.case_sensitive;
        want[j] = folds ? kBytes.fold[c] : c;
        fold[j] = folds ? 0x20 : 0;
        keep[j] = 0xff;
      }
      want_.push_back(load(want));
      fold_.push_back(load(fold));
      keep_.push_back(load(keep));
    }
  }

  uint64_t size() const { return len_; }
  bool needs_word_start() const { return needs_word_start_; }

  // Whether the pattern's bytes (under its case mode) start at `t`, given
  // that `avail` >= size() bytes are readable there.
  bool matches(const uint8_t* t, uint64_t avail) const {
    for (size_t k = 0; k < want_.size(); ++k) {
      const uint64_t off = 8 * k;
      uint64_t chunk = 0;
      if (avail - off >= 8)
        std::memcpy(&chunk, t + off, 8);
      else
        std::memcpy(&chunk, t + off, avail - off);  // only at the very end of a text
      if (((chunk | fold_[k]) & keep_[k]) != want_[k]) return false;
    }
    return true;
  }

 private:
  static uint64_t load(const uint8_t* b) {
    uint64_t v;
    std::memcpy(&v, b, 8);
    return v;
  }

  uint64_t len_;
  bool needs_word_start_;
  std::vector<uint64_t> want_, fold_, keep_;
};

}  // namespace cotsieve
