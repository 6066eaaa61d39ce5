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
  // A state of the walk is the address of its row of transitions.
  using Row = uint64_t;

  explicit Automaton(const std::vector<PatternSpec>& patterns);
  // The rows hold their own addresses: a copy would point into the original.
  Automaton(const Automaton&) = delete;
  Automaton& operator=(const Automaton&) = delete;

  // One row of stride() entries per state; the entry for a byte class is the
  // next state's row. One step of the walk is then a single load, with no
  // arithmetic on the chain of dependent loads that bounds it:
  // `row = reinterpret_cast<const Row*>(row)[byte_class[byte]]`.
  const uint8_t* byte_class() const { return byte_class_; }
  Row root(bool after_word_byte) const { return after_word_byte ? root_word_ : root_; }
  // Rows at or above this address have at least one pattern ending in them.
  Row first_output_row() const { return first_output_; }
  size_t max_pattern_length() const { return max_len_; }
  size_t state_count() const { return n_states_; }

  // Patterns ending at an output state, longest first.
  const int32_t* outputs_begin(Row row) const { return outputs_.data() + output_index_[output_number(row)]; }
  const int32_t* outputs_end(Row row) const { return outputs_.data() + output_index_[output_number(row) + 1]; }

 private:
  void build_byte_classes(const std::vector<PatternSpec>& patterns);
  Row row_of(uint32_t state) const { return reinterpret_cast<Row>(rows_.data() + (size_t(state) << stride_shift_)); }
  size_t output_number(Row row) const { return ((row - first_output_) / sizeof(Row)) >> stride_shift_; }

  uint8_t byte_class_[256] = {};
  uint32_t stride_ = 0;  // a power of two, so a state's index is a shift away
  uint32_t stride_shift_ = 0;
  Row root_ = 0, root_word_ = 0, first_output_ = 0;
  size_t max_len_ = 0;
  size_t n_states_ = 0;
  std::vector<Row> rows_;
  std::vector<uint32_t> output_index_;
  std::vector<int32_t> outputs_;
};

}  // namespace cotsieve
