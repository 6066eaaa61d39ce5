#include "automaton.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <stdexcept>

#include "bytes.h"

namespace cotsieve {
namespace {

constexpr uint32_t kNoChild = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kRootAfterNonWord = 0;
constexpr uint32_t kRootAfterWord = 1;

// The trie before it becomes a DFA: dense child table, one row per node.
struct Trie {
  uint32_t stride;
  std::vector<uint32_t> go;
  std::vector<std::vector<int32_t>> own;  // patterns ending exactly here

  explicit Trie(uint32_t s) : stride(s), go(2 * s, kNoChild), own(2) {}
  uint32_t size() const { return static_cast<uint32_t>(own.size()); }

  void insert(uint32_t root, const std::string& bytes, const uint8_t* byte_class, int32_t id) {
    uint32_t node = root;
    for (unsigned char b : bytes) {
      const size_t slot = size_t(node) * stride + byte_class[b];
      if (go[slot] == kNoChild) {
        go[slot] = size();
        go.resize(go.size() + stride, kNoChild);  // invalidates references into go
        own.emplace_back();
      }
      node = go[slot];
    }
    own[node].push_back(id);
  }
};

}  // namespace

void Automaton::build_byte_classes(const std::vector<PatternSpec>& patterns) {
  // Class 0: non-word bytes no pattern uses; class 1: unused word bytes.
  // Every folded byte a pattern uses gets its own class, shared by both cases.
  int folded_class[256];
  std::fill(folded_class, folded_class + 256, -1);
  uint32_t next = 2;
  for (const auto& p : patterns)
    for (unsigned char b : p.bytes) {
      uint8_t f = kBytes.fold[b];
      if (folded_class[f] < 0) folded_class[f] = static_cast<int>(next++);
    }
  for (int b = 0; b < 256; ++b) {
    int c = folded_class[kBytes.fold[b]];
    byte_class_[b] = static_cast<uint8_t>(c >= 0 ? c : (kBytes.word[b] ? 1 : 0));
  }
  while ((1u << stride_shift_) < next) ++stride_shift_;
  stride_ = 1u << stride_shift_;
}

Automaton::Automaton(const std::vector<PatternSpec>& patterns) {
  build_byte_classes(patterns);
  const uint32_t S = stride_;
  Trie trie(S);
  for (size_t i = 0; i < patterns.size(); ++i) {
    const auto& p = patterns[i];
    max_len_ = std::max(max_len_, p.bytes.size());
    bool start_checked = p.boundary_start && kBytes.word[static_cast<uint8_t>(p.bytes[0])];
    trie.insert(kRootAfterNonWord, p.bytes, byte_class_, static_cast<int32_t>(i));
    if (!start_checked) trie.insert(kRootAfterWord, p.bytes, byte_class_, static_cast<int32_t>(i));
  }
  const uint32_t n = trie.size();
  if (uint64_t(n) * S >= std::numeric_limits<uint32_t>::max())
    throw std::length_error("pattern set too large: the automaton would exceed 4G transitions");

  std::vector<bool> class_is_word(S, false);
  for (int b = 0; b < 256; ++b) class_is_word[byte_class_[b]] = kBytes.word[b];
  auto root_after = [&](uint32_t c) { return class_is_word[c] ? kRootAfterWord : kRootAfterNonWord; };

  // Breadth-first: a node's failure link (its longest proper suffix that is a
  // node, read in the context of the byte before that suffix) is shallower,
  // so its transitions and outputs are final when the node is reached.
  std::vector<uint32_t>& go = trie.go;
  std::vector<uint32_t> fail(n, 0);
  std::vector<std::vector<int32_t>> out(n);
  std::deque<uint32_t> queue;
  for (uint32_t r : {kRootAfterNonWord, kRootAfterWord})
    for (uint32_t c = 0; c < S; ++c) {
      uint32_t& child = go[size_t(r) * S + c];
      if (child == kNoChild) {
        child = root_after(c);
      } else {
        fail[child] = root_after(c);
        queue.push_back(child);
      }
    }
  while (!queue.empty()) {
    uint32_t u = queue.front();
    queue.pop_front();
    out[u] = trie.own[u];
    out[u].insert(out[u].end(), out[fail[u]].begin(), out[fail[u]].end());
    for (uint32_t c = 0; c < S; ++c) {
      uint32_t& v = go[size_t(u) * S + c];
      uint32_t via_fail = go[size_t(fail[u]) * S + c];
      if (v == kNoChild) {
        v = via_fail;
      } else {
        fail[v] = via_fail;
        queue.push_back(v);
      }
    }
  }

  // Renumber so that every output state sits above all the others: the hot
  // loop then detects a hit with one comparison.
  std::vector<uint32_t> new_id(n);
  uint32_t next = 0;
  for (uint32_t s = 0; s < n; ++s)
    if (out[s].empty()) new_id[s] = next++;
  const uint32_t first_output = next;
  output_index_.push_back(0);
  std::vector<uint32_t> output_order;
  for (uint32_t s = 0; s < n; ++s)
    if (!out[s].empty()) {
      new_id[s] = next++;
      output_order.push_back(s);
    }
  for (uint32_t s : output_order) {
    auto& ids = out[s];
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
      size_t la = patterns[a].bytes.size(), lb = patterns[b].bytes.size();
      return la != lb ? la > lb : a < b;
    });
    outputs_.insert(outputs_.end(), ids.begin(), ids.end());
    output_index_.push_back(static_cast<uint32_t>(outputs_.size()));
  }

  rows_.assign(size_t(n) * S, 0);  // sized before any address of it is taken
  for (uint32_t s = 0; s < n; ++s)
    for (uint32_t c = 0; c < S; ++c) rows_[size_t(new_id[s]) * S + c] = row_of(new_id[go[size_t(s) * S + c]]);
  root_ = row_of(new_id[kRootAfterNonWord]);
  root_word_ = row_of(new_id[kRootAfterWord]);
  first_output_ = row_of(first_output);
  n_states_ = n;
}

}  // namespace cotsieve
