#include "scanner.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "bytes.h"
#include "parallel.h"
#include "runs.h"

namespace cotsieve {

// Texts are cut into segments so that one thread can advance several of them
// in lockstep: the loads of independent DFA walks overlap instead of waiting
// on each other. A segment re-reads `max_pattern_length` bytes before its
// start, which rebuilds the exact automaton state there.
constexpr uint64_t kSegmentBytes = 16 * 1024;
// A block is the unit of work handed to a thread; it stays in L2 between the
// DFA walk and the per-text resolution that follows it.
constexpr uint64_t kBlockBytes = 512 * 1024;
constexpr size_t kBlockTexts = 2048;
constexpr int kDefaultLanes = 4;
// Steps per round of the lane loop, unrolled: the lanes then read their
// bytes at fixed displacements, and the loop's own count and test come once
// per round instead of once per step (benchmarks/RESULTS.md has the gain).
constexpr size_t kUnrolledSteps = 8;
// Steps in one run of the walk, before which room is made for a hit per step
// and lane.
constexpr size_t kStepsPerRun = 4096;

struct Segment {
  uint32_t text;  // index within the block
  uint32_t lane;
  uint64_t warm, begin, end;  // byte offsets in the text; hits count only past `begin`
  size_t hit_begin, hit_end;  // range in the lane's hit list
};

struct Hit {
  uint64_t end;
  Automaton::Row state;
  uint32_t lane;  // the walk's lane that found it
};

// Aligned to a cache line: the workers' scratches sit side by side in one
// vector, and each writes its own vectors' ends.
struct alignas(64) ScanScratch {
  std::vector<Segment> segments;
  std::vector<uint32_t> walk_order;  // indices into segments
  std::vector<Hit> lane_hits[8];
  std::vector<Hit> run_hits;  // the walk's hits of one run, every lane's
  std::vector<Match> resolver_slots;    // the resolver's ring: a candidate per start
  std::vector<uint64_t> resolver_held;  // which of its slots hold one
  std::vector<Match> matches;
};

namespace {

// One DFA step for every lane; `K` is a compile-time constant so the lane
// state lives in registers.
template <int K>
struct LaneWalker {
  using Row = Automaton::Row;
  const uint8_t* byte_class;
  Row first_output;

  const uint8_t* base[K];
  const uint8_t* p[K];
  const uint8_t* stop[K];
  Row state[K];
  size_t seg[K];

  // Runs `steps` steps; lane k's hits go to lists[k]. The hot loop writes
  // each hit to `room`, with space made beforehand for a hit per step and
  // lane, and the hits are dealt to their lanes after each run. (A call to
  // record a hit, however rare, made the compiler keep half the lane states
  // on the stack around it: 6% of the walk's time.)
  void run(size_t steps, std::vector<Hit>* lists, std::vector<Hit>& room) {
    while (steps > 0) {
      const size_t n = std::min(steps, kStepsPerRun);
      if (room.size() < n * K) room.resize(n * K);
      const Hit* const end = run_recording(n, room.data());
      for (const Hit* h = room.data(); h != end; ++h) lists[h->lane].push_back(*h);
      steps -= n;
    }
  }

  // Lane state is copied into locals so the compiler can keep it in
  // registers. Returns one past the last hit written.
  Hit* run_recording(size_t steps, Hit* hits) {
    const uint8_t* at[K];
    Row s[K];
    for (int k = 0; k < K; ++k) {
      at[k] = p[k];
      s[k] = state[k];
    }
    auto step = [&](size_t i) {
      for (int k = 0; k < K; ++k) {
        s[k] = reinterpret_cast<const Row*>(s[k])[byte_class[at[k][i]]];
        if (__builtin_expect(s[k] >= first_output, 0))
          *hits++ = {static_cast<uint64_t>(at[k] + i + 1 - base[k]), s[k], static_cast<uint32_t>(k)};
      }
    };
    size_t i = 0;
    for (; i + kUnrolledSteps <= steps; i += kUnrolledSteps) {
#pragma GCC unroll 8
      for (size_t j = 0; j < kUnrolledSteps; ++j) step(i + j);
    }
    for (; i < steps; ++i) step(i);
    for (int k = 0; k < K; ++k) {
      p[k] = at[k] + steps;
      state[k] = s[k];
    }
    return hits;
  }
};

// Segments are walked longest first. The lanes then run out of segments at
// nearly the same time, and what is left of theirs, which they finish one
// at a time at a fraction of the lockstep's speed, is short: in text order,
// 3% of the real traces' bytes were walked so, and 0.6% longest first
// (benchmarks/RESULTS.md). Hits stay with their segment, so the order of
// the walk does not change what is resolved.
void order_longest_first(const std::vector<Segment>& segs, std::vector<uint32_t>& order) {
  order.resize(segs.size());
  for (size_t g = 0; g < segs.size(); ++g) order[g] = static_cast<uint32_t>(g);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return segs[a].end - segs[a].warm > segs[b].end - segs[b].warm;
  });
}

template <int K>
void walk_segments(const Automaton& a, const TextRef* texts, std::vector<Segment>& segs,
                   const std::vector<uint32_t>& order, std::vector<Hit>* lane_hits, std::vector<Hit>& run_hits) {
  LaneWalker<K> w{a.byte_class(), a.first_output_row(), {}, {}, {}, {}, {}};
  size_t next = 0;
  auto start = [&](int k) {
    Segment& g = segs[order[next]];
    const uint8_t* base = texts[g.text].data;
    g.lane = static_cast<uint32_t>(k);
    g.hit_begin = lane_hits[k].size();
    w.base[k] = base;
    w.p[k] = base + g.warm;
    w.stop[k] = base + g.end;
    w.state[k] = a.root(g.warm > 0 && kBytes.word[base[g.warm - 1]]);
    w.seg[k] = order[next++];
  };
  auto finish = [&](int k) { segs[w.seg[k]].hit_end = lane_hits[k].size(); };
  // Lane k's segment to its end, alone.
  auto walk_alone = [&](int k) {
    LaneWalker<1> one{w.byte_class, w.first_output, {w.base[k]}, {w.p[k]}, {w.stop[k]}, {w.state[k]}, {w.seg[k]}};
    one.run(static_cast<size_t>(w.stop[k] - w.p[k]), &lane_hits[k], run_hits);
    finish(k);
  };

  if (segs.size() < static_cast<size_t>(K)) {  // too few for lockstep: one after another on lane 0
    while (next < segs.size()) {
      start(0);
      walk_alone(0);
    }
    return;
  }
  for (int k = 0; k < K; ++k) start(k);
  for (;;) {
    size_t steps = std::numeric_limits<size_t>::max();
    for (int k = 0; k < K; ++k) steps = std::min(steps, static_cast<size_t>(w.stop[k] - w.p[k]));
    w.run(steps, lane_hits, run_hits);
    bool all_busy = true;
    for (int k = 0; k < K; ++k) {
      if (w.p[k] != w.stop[k]) continue;
      finish(k);
      if (next < segs.size()) {
        start(k);
      } else {
        w.stop[k] = nullptr;  // lane drained
        all_busy = false;
      }
    }
    if (!all_busy) break;
  }
  for (int k = 0; k < K; ++k)
    if (w.stop[k] != nullptr) walk_alone(k);
}

void walk(int lanes, const Automaton& a, const TextRef* texts, std::vector<Segment>& segs, ScanScratch& scratch) {
  order_longest_first(segs, scratch.walk_order);
  const std::vector<uint32_t>& order = scratch.walk_order;
  switch (lanes) {
    case 1: return walk_segments<1>(a, texts, segs, order, scratch.lane_hits, scratch.run_hits);
    case 2: return walk_segments<2>(a, texts, segs, order, scratch.lane_hits, scratch.run_hits);
    case 8: return walk_segments<8>(a, texts, segs, order, scratch.lane_hits, scratch.run_hits);
    default: return walk_segments<4>(a, texts, segs, order, scratch.lane_hits, scratch.run_hits);
  }
}

// Leftmost-longest selection over the candidate occurrences of one text.
// Candidates arrive in order of their end, so a later one at a start is
// longer than every earlier one there, and only the longest at each start
// can be chosen: each start keeps one candidate, in a ring of slots indexed
// by start. No occurrence ending at `end` or later starts before
// `end - max_len`, so the starts before that are final, and are taken in
// order, each one that is not inside the match taken before it. There is no
// pile to sort: patterns nested many deep ("a", "aa", ... over "aaaa...")
// cost one slot per start, where a sorted pile of every candidate took about
// 50 ns each (benchmarks/RESULTS.md).
class Resolver {
 public:
  // `slots` and `occupied` are the scratch's, reused from text to text.
  Resolver(uint64_t max_len, std::vector<Match>& slots, std::vector<uint64_t>& occupied, std::vector<Match>& matches)
      : max_len_(max_len), slots_(slots), occupied_(occupied), matches_(matches) {
    size_t ring = 64;
    while (ring <= max_len) ring <<= 1;  // the starts not yet final span max_len
    mask_ = ring - 1;
    if (slots_.size() < ring) slots_.resize(ring);
    occupied_.assign(ring / 64, 0);
    matches_.clear();
  }

  uint64_t cursor() const { return cursor_; }

  // A candidate at `start` replaces the one there unless that one is longer,
  // or as long with a lower pattern index.
  void add(uint64_t start, uint64_t end, int32_t pattern) {
    const size_t i = start & mask_;
    uint64_t& word = occupied_[i >> 6];
    const uint64_t bit = uint64_t{1} << (i & 63);
    Match& slot = slots_[i];
    if ((word & bit) != 0 && (slot.end > end || (slot.end == end && slot.pattern <= pattern))) return;
    // Field by field: a Match built whole on the stack was read back as one
    // 16-byte load over two 8-byte stores, which stalls store forwarding.
    slot.start = start;
    slot.end = end;
    slot.pattern = pattern;
    held_ += (word & bit) == 0;
    word |= bit;
    lowest_ = std::min(lowest_, start);
  }

  // Before the candidates of a hit ending at `end` are added: takes those
  // that start before any occurrence ending there or later can, so the ones
  // held start within max_len of each other, inside one turn of the ring.
  void before_hit(uint64_t end) {
    if (end > max_len_) settle(end - max_len_ - 1);
  }

  // After the text's last hit: takes every candidate still held.
  void finish() { settle(kNone); }

 private:
  static constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();

  // Takes the candidates that start at or before `limit`, in order of start.
  void settle(uint64_t limit) {
    while (held_ > 0 && lowest_ <= limit) {
      const size_t i = lowest_ & mask_;
      occupied_[i >> 6] &= ~(uint64_t{1} << (i & 63));
      --held_;
      if (lowest_ >= cursor_) {
        matches_.push_back(slots_[i]);
        cursor_ = slots_[i].end;
      }
      lowest_ = held_ > 0 ? next_held_after(lowest_) : kNone;
    }
  }

  // The lowest start held after `at`; one is held, less than a turn ahead.
  uint64_t next_held_after(uint64_t at) const {
    for (++at;;) {
      const size_t i = at & mask_;
      const uint64_t ahead = occupied_[i >> 6] >> (i & 63);
      if (ahead != 0) return at + static_cast<uint64_t>(__builtin_ctzll(ahead));
      at += 64 - (i & 63);
    }
  }

  uint64_t max_len_;
  std::vector<Match>& slots_;
  std::vector<uint64_t>& occupied_;
  std::vector<Match>& matches_;
  size_t mask_ = 0;
  size_t held_ = 0;          // candidates in the ring
  uint64_t lowest_ = kNone;  // the lowest start held
  uint64_t cursor_ = 0;      // one past the last match taken
};

}  // namespace

// Beyond about two patterns per bucket the filter passes too many positions
// and the DFA is faster: on real traces, the 3-17 pattern shipped sets scan at
// 2.5-3.9 GB/s with the prefilter against about 1 GB/s with the DFA, while the
// 84-pattern default set scans at 0.7 against 0.93 GB/s (benchmarks/RESULTS.md).
constexpr size_t kPrefilterMaxPatterns = 32;

namespace {
std::vector<PatternSpec> checked(std::vector<PatternSpec> patterns) {
  for (size_t i = 0; i < patterns.size(); ++i)
    if (patterns[i].bytes.empty()) throw std::invalid_argument("pattern " + std::to_string(i) + " is empty");
  return patterns;
}
}  // namespace

Scanner::Scanner(std::vector<PatternSpec> patterns, Engine engine)
    : patterns_(checked(std::move(patterns))), automaton_(patterns_) {
  checks_.reserve(patterns_.size());
  for (const PatternSpec& p : patterns_)
    checks_.push_back({static_cast<uint32_t>(p.bytes.size()), p.case_sensitive,
                       p.boundary_end && kBytes.word[static_cast<uint8_t>(p.bytes.back())], p.anchor});
  if (engine == Engine::kPrefilter && !Prefilter::available())
    throw std::invalid_argument("the prefilter engine needs a CPU with AVX2 or AVX-512 VBMI, and COTSIEVE_SIMD not capping it to none");
  bool use = engine == Engine::kPrefilter ||
             (engine == Engine::kAuto && Prefilter::available() && !patterns_.empty() &&
              patterns_.size() <= kPrefilterMaxPatterns);
  if (use && !patterns_.empty()) {
    prefilter_ = std::make_unique<Prefilter>(patterns_);
    literals_.reserve(patterns_.size());
    for (const PatternSpec& p : patterns_) literals_.emplace_back(p);
  }
}

Scanner::~Scanner() = default;

bool Scanner::context_ok(const uint8_t* t, uint64_t n, uint64_t start, int32_t id, RunCache* anchors) const {
  const PatternCheck& c = checks_[id];
  const uint64_t end = start + c.length;
  if (c.end_boundary && end < n && kBytes.word[t[end]]) return false;
  switch (c.anchor) {
    case Anchor::Any: return true;
    case Anchor::LineStart: return line_start_at(t, start, anchors[0]);
    case Anchor::SentenceStart: return sentence_start_at(t, start, anchors[0], anchors[1]);
  }
  return false;
}

void Scanner::resolve_text(const TextRef& text, const Segment* segs, size_t n_segs,
                           ScanScratch& scratch) const {
  const uint8_t* t = text.data;
  RunCache anchors[2];
  Resolver resolver(automaton_.max_pattern_length(), scratch.resolver_slots, scratch.resolver_held, scratch.matches);
  for (size_t g = 0; g < n_segs; ++g) {
    const Segment& seg = segs[g];
    const std::vector<Hit>& hits = scratch.lane_hits[seg.lane];
    for (size_t h = seg.hit_begin; h < seg.hit_end; ++h) {
      const Hit& hit = hits[h];
      if (hit.end <= seg.begin) continue;  // the previous segment owns it
      resolver.before_hit(hit.end);
      for (const int32_t* it = automaton_.outputs_begin(hit.state); it != automaton_.outputs_end(hit.state); ++it) {
        const PatternCheck& c = checks_[*it];
        const uint64_t start = hit.end - c.length;
        // Settled matches already cover this start; shorter outputs start later, so go on.
        if (start < resolver.cursor()) continue;
        // The automaton folds case; a case-sensitive pattern needs its exact bytes.
        if (c.case_sensitive && std::memcmp(t + start, patterns_[*it].bytes.data(), c.length) != 0) continue;
        if (context_ok(t, text.size, start, *it, anchors)) resolver.add(start, hit.end, *it);
      }
    }
  }
  resolver.finish();
}

// The longest valid occurrence starting exactly at `start` among the
// patterns of the candidate buckets; ties go to the lowest index. Each bucket
// lists its patterns longest first, then by index, so a bucket is done at its
// first valid pattern or at the first one that could not beat the best so far.
bool Scanner::longest_in_buckets(const uint8_t* t, uint64_t n, uint64_t start, uint32_t buckets,
                                 RunCache* anchors, Match& found) const {
  const bool after_word = start > 0 && kBytes.word[t[start - 1]];
  uint64_t best_len = 0;
  int32_t best = -1;
  for (; buckets != 0; buckets &= buckets - 1) {
    for (int32_t id : prefilter_->bucket(__builtin_ctz(buckets))) {
      const Literal& lit = literals_[id];
      const uint64_t len = lit.size();
      if (len < best_len || (len == best_len && id > best)) break;
      if (len > n - start || (after_word && lit.needs_word_start())) continue;
      if (!lit.matches(t + start, n - start) || !context_ok(t, n, start, id, anchors)) continue;
      best_len = len;
      best = id;
      break;
    }
  }
  if (best < 0) return false;
  found = {start, start + best_len, best};
  return true;
}

void Scanner::scan_text_prefiltered(const TextRef& text, ScanScratch& scratch) const {
  const uint8_t* t = text.data;
  const uint64_t n = text.size;
  RunCache anchors[2];
  std::vector<Match>& matches = scratch.matches;
  matches.clear();
  uint64_t cursor = 0;
  Match found{};
  const bool two_halves = prefilter_->two_halves();
  constexpr size_t kBatch = 64;  // windows per filter call: 4 KiB of text
  uint64_t masks[kBatch];
  alignas(64) uint8_t low[kBatch * Prefilter::kWindow], high[kBatch * Prefilter::kWindow];
  for (uint64_t pos = 0; pos < n; pos += kBatch * Prefilter::kWindow) {
    const size_t count = std::min<uint64_t>(kBatch, (n - pos + Prefilter::kWindow - 1) / Prefilter::kWindow);
    prefilter_->window_masks(t, n, pos, count, masks, low, high);
    // On marker-sized sets most windows pass nothing: one branch-free pass
    // marks the windows that do, and the loop visits only those.
    uint64_t live = 0;
    for (size_t w = 0; w < count; ++w) live |= uint64_t(masks[w] != 0) << w;
    for (; live != 0; live &= live - 1) {
      const size_t w = static_cast<size_t>(__builtin_ctzll(live));
      for (uint64_t mask = masks[w]; mask != 0; mask &= mask - 1) {
        const size_t i = w * Prefilter::kWindow + static_cast<size_t>(__builtin_ctzll(mask));
        const uint64_t start = pos + i;
        const uint32_t buckets = low[i] | (two_halves ? uint32_t(high[i]) << 8 : 0);
        if (start < cursor || !longest_in_buckets(t, n, start, buckets, anchors, found)) continue;
        matches.push_back(found);
        cursor = found.end;
      }
    }
  }
}

void Scanner::scan_block(const TextRef* texts, size_t first, size_t last, int worker, int lanes,
                         ScanScratch& scratch, const Visitor& visit) const {
  if (prefilter_) {
    for (size_t t = first; t < last; ++t) {
      scan_text_prefiltered(texts[t], scratch);
      visit(worker, t, scratch.matches);
    }
    return;
  }
  const uint64_t warmup = automaton_.max_pattern_length();
  const uint64_t seg_bytes = std::max<uint64_t>(kSegmentBytes, 16 * warmup);
  auto& segs = scratch.segments;
  segs.clear();
  for (auto& h : scratch.lane_hits) h.clear();
  for (size_t t = first; t < last; ++t)
    for (uint64_t b = 0; b < texts[t].size; b += seg_bytes)
      segs.push_back({static_cast<uint32_t>(t - first), 0, b >= warmup ? b - warmup : 0, b,
                      std::min(texts[t].size, b + seg_bytes), 0, 0});
  if (!patterns_.empty()) walk(lanes, automaton_, texts + first, segs, scratch);

  size_t g = 0;
  for (size_t t = first; t < last; ++t) {
    size_t g_end = g;
    while (g_end < segs.size() && segs[g_end].text == t - first) ++g_end;
    if (patterns_.empty()) {
      scratch.matches.clear();
    } else {
      resolve_text(texts[t], segs.data() + g, g_end - g, scratch);
    }
    visit(worker, t, scratch.matches);
    g = g_end;
  }
}

void Scanner::scan(const std::vector<TextRef>& texts, int workers, const Visitor& visit, int lanes) const {
  if (lanes <= 0) lanes = kDefaultLanes;
  std::vector<size_t> block_starts;
  uint64_t bytes = 0;
  size_t count = 0;
  for (size_t t = 0; t < texts.size(); ++t) {
    if (t == 0 || bytes >= kBlockBytes || count >= kBlockTexts) {
      block_starts.push_back(t);
      bytes = 0;
      count = 0;
    }
    bytes += texts[t].size;
    ++count;
  }
  block_starts.push_back(texts.size());
  const size_t n_blocks = block_starts.size() - 1;
  if (n_blocks == 0) return;

  // Scratch per worker, not per block: its buffers grow once and are reused.
  std::vector<ScanScratch> scratch(std::min<size_t>(static_cast<size_t>(std::max(workers, 1)), n_blocks));
  parallel_for(n_blocks, static_cast<int>(scratch.size()), [&](int worker, size_t b) {
    scan_block(texts.data(), block_starts[b], block_starts[b + 1], worker, lanes, scratch[worker], visit);
  });
}

}  // namespace cotsieve
