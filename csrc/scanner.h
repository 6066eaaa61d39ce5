// The scanner: finds leftmost-longest, non-overlapping matches of a compiled
// pattern set in a batch of texts, on several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "automaton.h"
#include "literal.h"
#include "prefilter.h"

namespace cotsieve {

struct TextRef {
  const uint8_t* data;
  uint64_t size;
};

struct Match {
  uint64_t start;
  uint64_t end;
  int32_t pattern;
};

// Everything a worker thread reuses from block to block.
struct ScanScratch;

// A contiguous piece of one text, scanned by one lane.
struct Segment;
struct RunCache;

// How matches are found; both give identical results.
//  - kDfa walks every byte through the automaton, several texts in lockstep.
//    It runs anywhere and its speed does not depend on the pattern set.
//  - kPrefilter finds candidate starts with SIMD and checks only those by a
//    trie walk. Much faster on marker-sized sets; needs AVX2 (or AVX-512
//    VBMI, its faster kernel).
//  - kAuto takes kPrefilter when the CPU has it and the set is small enough
//    for the filter to stay selective.
enum class Engine : int { kAuto = 0, kDfa = 1, kPrefilter = 2 };

class Scanner {
 public:
  // Throws std::invalid_argument for an empty pattern, or for kPrefilter on
  // a CPU without it.
  explicit Scanner(std::vector<PatternSpec> patterns, Engine engine = Engine::kAuto);
  ~Scanner();

  size_t pattern_count() const { return patterns_.size(); }
  const PatternSpec& pattern(size_t i) const { return patterns_[i]; }
  const Automaton& automaton() const { return automaton_; }
  Engine engine() const { return prefilter_ ? Engine::kPrefilter : Engine::kDfa; }

  // Called once per text, in increasing text order within a worker, with that
  // text's matches in increasing start order. Calls for different texts may
  // come from different threads at once.
  using Visitor = std::function<void(int worker, size_t text, const std::vector<Match>& matches)>;

  // The scanner is immutable: any number of scans may run at once. The
  // blocks of texts are spread over `workers` threads by parallel_for.
  // `lanes` (1, 2, 4 or 8) sets how many segments one thread advances in
  // lockstep; it exists so benchmarks can measure the choice.
  void scan(const std::vector<TextRef>& texts, int workers, const Visitor& visit, int lanes = 0) const;

 private:
  void scan_block(const TextRef* texts, size_t first, size_t last, int worker, int lanes,
                  ScanScratch& scratch, const Visitor& visit) const;
  void resolve_text(const TextRef& text, const Segment* segs, size_t n_segs,
                    ScanScratch& scratch) const;
  void scan_text_prefiltered(const TextRef& text, ScanScratch& scratch) const;
  bool longest_in_buckets(const uint8_t* t, uint64_t n, uint64_t start, uint32_t buckets, RunCache* anchors,
                          Match& found) const;
  // End boundary and anchor: what neither the automaton nor a literal
  // compare checks, for pattern `id` at `start`.
  bool context_ok(const uint8_t* t, uint64_t n, uint64_t start, int32_t id, RunCache* anchors) const;

  // What checking an occurrence needs of its pattern, in 8 bytes: resolving
  // a hit reads one of these per output instead of the PatternSpec and its
  // string's bytes (about 1.5 ms of `analyze` on the real traces).
  struct PatternCheck {
    uint32_t length;
    bool case_sensitive;
    bool end_boundary;  // asked for, and the last byte is a word byte
    Anchor anchor;
  };

  std::vector<PatternSpec> patterns_;
  std::vector<PatternCheck> checks_;  // one per pattern
  Automaton automaton_;
  std::unique_ptr<Prefilter> prefilter_;
  std::vector<Literal> literals_;  // for the prefilter engine
};

}  // namespace cotsieve
