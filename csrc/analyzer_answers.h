// Answers (docs/metrics.md): boxed values and answer phrases, where the
// first one is and how many distinct values there are.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "layout.h"
#include "scanner.h"

namespace cotsieve {

constexpr uint64_t kMaxPhraseAnswerBytes = 200;
constexpr uint64_t kMaxBoxBytes = 4096;  // bounds the brace walk of an unclosed box

// The spellings that open a box (docs/metrics.md).
constexpr const char* kBoxOpeners[] = {"\\boxed{", "\\fbox{"};

// Whether the bytes of `opener` start at `at`.
inline bool opener_at(const uint8_t* t, uint64_t n, uint64_t at, const char* opener) {
  const uint64_t length = std::strlen(opener);
  return at + length <= n && std::memcmp(t + at, opener, length) == 0;
}

// Where the boxes of one text close (docs/metrics.md: braces balance from
// the content start, a backslash makes the next byte literal, and the close
// must come within kMaxBoxBytes). One forward walk serves every box: a box
// that opens while another is still open is met by the walk under way
// instead of being walked again from its own start. A trace that loops on
// "\boxed{. \boxed{. ..." would otherwise walk 4 KiB per box; on the real
// traces such walks were most of the answer work.
//
// The walk is in step with each box's own walk from its content start: the
// byte before a box's '{' is 'd' or 'x', never a backslash, so the walk
// meets every box's '{' as a brace and is never mid-escape after it.
class BoxCloser {
 public:
  void reset(const uint8_t* t, uint64_t n) {
    t_ = t;
    n_ = n;
    pos_ = 0;
    depth_ = 0;
    boxes_.clear();
    open_.clear();
    oldest_ = 0;
    asked_ = 0;
  }

  // The closing brace of the box whose content starts at `content`, or
  // false if it does not close in time. Calls come in increasing order.
  bool close_of(uint64_t content, uint64_t& close) {
    while (oldest_ < open_.size() && pos_ < content) step();
    if (!known(content)) {
      // A walk with boxes open meets every later box (see above), so the
      // walk has nothing open here: it resumes at this box.
      if (oldest_ < open_.size()) throw std::logic_error("box walk passed a box it did not meet");
      start_at(content);
    }
    // A box met and not yet closed is open, so each step moves on.
    while (boxes_[asked_].close == kStillOpen) step();
    close = boxes_[asked_].close;
    return close != kNeverClosed;
  }

 private:
  static constexpr uint64_t kStillOpen = ~uint64_t{0};
  static constexpr uint64_t kNeverClosed = ~uint64_t{0} - 1;

  struct Box {
    uint64_t content, limit, close;
    int64_t depth;  // the walk's depth inside the box's own braces
  };

  bool known(uint64_t content) {
    while (asked_ < boxes_.size() && boxes_[asked_].content < content) ++asked_;
    return asked_ < boxes_.size() && boxes_[asked_].content == content;
  }

  void start_at(uint64_t content) {
    pos_ = content;
    depth_ = 0;
    open_.clear();
    oldest_ = 0;
    asked_ = boxes_.size();
    push(content);
  }

  void push(uint64_t content) {
    ++depth_;
    open_.push_back(boxes_.size());
    // Field by field: a struct built whole on the stack stalled on its reload.
    Box& box = boxes_.emplace_back();
    box.content = content;
    box.limit = std::min(n_, content + kMaxBoxBytes);
    box.close = kStillOpen;
    box.depth = depth_;
  }

  // Whether the '{' at `at` ends a box opener.
  bool box_brace(uint64_t at) const {
    for (const char* opener : kBoxOpeners) {
      const uint64_t length = std::strlen(opener);
      if (at + 1 >= length && opener_at(t_, n_, at + 1 - length, opener)) return true;
    }
    return false;
  }

  // One byte (two for an escape) of the walk. Open boxes have ever higher
  // depths and later limits, so only the newest can close and only the
  // oldest can run out.
  void step() {
    while (oldest_ < open_.size() && pos_ >= boxes_[open_[oldest_]].limit)
      boxes_[open_[oldest_++]].close = kNeverClosed;
    if (oldest_ == open_.size()) return;
    const uint8_t c = t_[pos_];
    if (c == '\\') {
      pos_ += 2;
      return;
    }
    if (c == '{') {
      if (box_brace(pos_))
        push(pos_ + 1);
      else
        ++depth_;
    } else if (c == '}') {
      Box& newest = boxes_[open_.back()];
      if (--depth_ == newest.depth - 1) {
        newest.close = pos_;
        open_.pop_back();
      }
    }
    ++pos_;
  }

  const uint8_t* t_ = nullptr;
  uint64_t n_ = 0, pos_ = 0;
  int64_t depth_ = 0;
  std::vector<Box> boxes_;   // every box met, in order of content start
  std::vector<size_t> open_;  // boxes still open, oldest first from `oldest_`
  size_t oldest_ = 0, asked_ = 0;
};

struct AnswerInfo {
  int64_t first_offset = -1;
  uint64_t first_end = 0;
  int64_t distinct = 0;
};

// The answers of one text, found from the layout's answer hints; the buffers
// are reused from text to text.
class AnswerFinder {
 public:
  AnswerInfo find(const TextRef& text, const Offsets& hints);

 private:
  std::vector<uint64_t> hashes_;
  std::vector<uint8_t> bytes_;  // a normalized answer value
  BoxCloser boxes_;
};

}  // namespace cotsieve
