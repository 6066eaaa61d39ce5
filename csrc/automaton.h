// Pattern compiler: an Aho-Corasick DFA over ASCII-folded bytes.
//
// The DFA has two roots, one for "the previous byte was not a word byte" and
// one for "it was". A pattern that needs a word boundary before it is only
// reachable from the first root, so the start boundary is enforced by the
// automaton itself and "so" inside "also" never reaches verification. Case,
// the end boundary and anchors are checked on the (rare) hits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cotsieve {

enum class Anchor : uint8_t { Any = 0, LineStart = 1, SentenceStart = 2 };

struct PatternSpec {
  std::string bytes;
  int32_t category = 0;
  bool case_sensitive = false;
  bool boundary_start = true;  // requested; applies only if the first byte is a word byte
  bool boundary_end = true;    // requested; applies only if the last byte is a word byte
  Anchor anchor = Anchor::Any;
};

class Automaton {
 public:
  explicit Automaton(const std::vector<PatternSpec>& patterns);

  // Transitions are stored as premultiplied offsets (state * stride), so one
  // step is `state = table[state + byte_class[byte]]`.
  const uint32_t* table() const { return table_.data(); }
  const uint8_t* byte_class() const { return byte_class_; }
  uint32_t root(bool after_word_byte) const { return after_word_byte ? root_word_ : 0; }
  // States at or above this offset have at least one pattern ending in them.
  uint32_t first_output_state() const { return first_output_; }
  size_t max_pattern_length() const { return max_len_; }
  size_t state_count() const { return n_states_; }

  // Patterns ending at an output state, longest first.
  const int32_t* outputs_begin(uint32_t state) const {
    return outputs_.data() + output_index_[(state - first_output_) >> stride_shift_];
  }
  const int32_t* outputs_end(uint32_t state) const {
    return outputs_.data() + output_index_[((state - first_output_) >> stride_shift_) + 1];
  }

 private:
  void build_byte_classes(const std::vector<PatternSpec>& patterns);

  uint8_t byte_class_[256] = {};
  uint32_t stride_ = 0;  // a power of two, so a state's index is a shift away
  uint32_t stride_shift_ = 0;
  uint32_t root_word_ = 0;
  uint32_t first_output_ = 0;
  size_t max_len_ = 0;
  size_t n_states_ = 0;
  std::vector<uint32_t> table_;
  std::vector<uint32_t> output_index_;
  std::vector<int32_t> outputs_;
};

}  // namespace cotsieve
