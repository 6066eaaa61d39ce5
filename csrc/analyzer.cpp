#include "analyzer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <unordered_map>

#include "bytes.h"
#include "layout.h"
#include "runs.h"

namespace cotsieve {

constexpr uint64_t kRepeatableUnitBytes = 16;
constexpr uint64_t kMaxPhraseAnswerBytes = 200;
constexpr uint64_t kMaxBoxBytes = 4096;  // bounds the brace walk of an unclosed box
constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

namespace {

// The high and low halves of a 64x64-bit product, folded: one multiply
// mixes 128 input bits, and independent products do not wait on each other.
inline uint64_t fold_multiply(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

// fold_multiply with both factors kept in the result. A bare product forgets
// one factor when the other is zero, which text can arrange (a word equal to
// the running state), and it is the same with its factors swapped. Here a zero
// factor leaves the other one in, and the rotate and the add make the two
// sides unequal partners. This keeps collisions out of natural text; the keys
// are public, so text built for it can still collide (docs/metrics.md).
inline uint64_t mix(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  const uint64_t high = b ^ static_cast<uint64_t>(product >> 64);
  return (a ^ static_cast<uint64_t>(product)) + ((high << 23) | (high >> 41));
}

inline uint64_t load8(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

constexpr uint64_t kHashKeys[4] = {0xa0761d6478bd642full, 0xe7037ed1a0b428dbull, 0x8ebc6af09c88c6e3ull,
                                   0x589965cc75374cc3ull};

// A 64-bit hash of a byte string: 16 bytes per multiply, three independent
// lanes on long strings, and overlapping loads for the last bytes instead of
// a byte loop. Strings of under 8 bytes fall back to bytes. Each chunk is
// mixed into its lane rather than replacing it, so no chunk can wipe what came
// before it, and `mix` keeps both of its words.
uint64_t hash_bytes(const uint8_t* p, uint64_t n) {
  uint64_t seed = n * kHashKeys[0], a = 0, b = 0;
  if (n >= 8) {
    uint64_t i = 0;
    if (n > 16) {
      uint64_t lane1 = seed, lane2 = seed;
      for (; i + 48 < n; i += 48) {
        seed ^= mix(load8(p + i) ^ kHashKeys[1], load8(p + i + 8) ^ seed);
        lane1 ^= mix(load8(p + i + 16) ^ kHashKeys[2], load8(p + i + 24) ^ lane1);
        lane2 ^= mix(load8(p + i + 32) ^ kHashKeys[3], load8(p + i + 40) ^ lane2);
      }
      seed ^= lane1 ^ lane2;
      for (; i + 16 < n; i += 16) seed ^= mix(load8(p + i) ^ kHashKeys[1], load8(p + i + 8) ^ seed);
    }
    a = load8(p + (n > 16 ? n - 16 : 0));
    b = load8(p + n - 8);
  } else {
    for (uint64_t k = 0; k < n; ++k) a = (a << 8) | p[k];
  }
  return fold_multiply(kHashKeys[1] ^ n, mix(a ^ kHashKeys[1], b ^ seed));
}

// The spellings that open a box (docs/metrics.md).
constexpr const char* kBoxOpeners[] = {"\\boxed{", "\\fbox{"};

// Whether the bytes of `opener` start at `at`.
inline bool opener_at(const uint8_t* t, uint64_t n, uint64_t at, const char* opener) {
  const uint64_t length = std::strlen(opener);
  return at + length <= n && std::memcmp(t + at, opener, length) == 0;
}

// Where the content of a box that opens at `at` starts, or 0 if none opens
// there (a box's content never starts at 0).
inline uint64_t box_content_at(const uint8_t* t, uint64_t n, uint64_t at) {
  for (const char* opener : kBoxOpeners)
    if (opener_at(t, n, at, opener)) return at + std::strlen(opener);
  return 0;
}

}  // namespace

struct Span {
  uint64_t start, end;
};

// The bytes of a text's units that repeat an earlier unit's bytes, exactly.
// A key made of a unit's length and its first, middle and last eight bytes
// finds an earlier unit worth comparing, and only then are the bytes
// compared. (Hashing every byte of every unit cost a loop whose length the
// branch predictor could not know.) Units are at least kRepeatableUnitBytes
// long, so all three eight-byte loads lie inside the unit.
//
// Whether a unit repeats is close to a coin toss on looping traces, so the
// common path takes no branch on it: the long units are gathered first, one
// pass over them pairs each with the first earlier unit of its key, and a
// second compares the pairs' bytes. Near-repeats share keys often enough
// ("subtract 3 to get 31." after "subtract 1 to get 31."): a unit whose
// bytes differ from its key's first unit is looked up by a hash of all its
// bytes among the earlier such units, so that many units sharing a key
// (which text can be built to do) cost linear time, not quadratic.
class RepeatFinder {
 public:
  struct UnitRef {
    uint64_t start, length, key;
  };

  // Before each text: room for `units` units, for the caller to write
  // (start and length) and then to `keep` the first of them.
  UnitRef* start(size_t units) {
    pairs_.reset(units);
    return units_.reset(units);
  }
  // The units kept: those of at least kRepeatableUnitBytes, in text order.
  void keep(size_t n_units) { units_.resize(n_units); }

  // The repeated bytes of the units kept.
  uint64_t repeated_bytes(const uint8_t* t) {
    uint64_t repeated = 0;
    pair_with_first_of_key(t);
    if (!unlike_.empty()) unlike_.clear();  // clear() also wipes the buckets, however few units used them
    for (const Pair& pair : pairs_)
      if (same_bytes(t, pair.earlier, pair.later) || repeats_an_unlike(t, pair.later))
        repeated += units_[pair.later].length;
    return repeated;
  }

 private:
  struct Pair {
    size_t earlier, later;
  };

  bool same_bytes(const uint8_t* t, size_t a, size_t b) const {
    return units_[a].length == units_[b].length &&
           std::memcmp(t + units_[a].start, t + units_[b].start, units_[b].length) == 0;
  }

  // Whether `unit`, unlike the first unit of its key, has the bytes of an
  // earlier such unit; if not, it is remembered as one.
  bool repeats_an_unlike(const uint8_t* t, size_t unit) {
    const uint64_t hash = hash_bytes(t + units_[unit].start, units_[unit].length);
    const auto [first, last] = unlike_.equal_range(hash);
    for (auto it = first; it != last; ++it)
      if (same_bytes(t, it->second, unit)) return true;
    unlike_.emplace(hash, unit);
    return false;
  }

  struct Slot {
    uint64_t key;
    size_t unit;
  };
  static constexpr uint64_t kGenerationBits = 0xFFFF;

  uint64_t key_of(const uint8_t* t, const UnitRef& u) const {
    const uint8_t* p = t + u.start;
    // The middle word is rotated into the first rather than mixed on its
    // own: one multiply per unit. Keys only pick units to compare.
    const uint64_t middle = load8(p + u.length / 2 - 4), rotated = (middle << 29) | (middle >> 35);
    const uint64_t mixed = mix(load8(p) ^ rotated ^ kHashKeys[2] ^ u.length, load8(p + u.length - 8) ^ kHashKeys[3]);
    return (mixed & ~kGenerationBits) | generation_;
  }

  bool taken(size_t i) const { return (slots_[i].key & kGenerationBits) == generation_; }

  // A key's own slot, from bits above the generation's.
  size_t home_of(uint64_t key) const { return (key >> 16) & mask_; }

  // The first slot from the key's own that is empty or holds the key.
  size_t slot_of(uint64_t key) const {
    size_t i = home_of(key);
    while (taken(i) && slots_[i].key != key) i = (i + 1) & mask_;
    return i;
  }

  // Starts a generation, with at most one unit in four slots: short probes.
  void next_generation() {
    size_t capacity = 16;
    while (capacity < 4 * units_.size()) capacity <<= 1;
    if (slots_capacity_ < capacity) {
      slots_.reset(new Slot[capacity]());
      slots_capacity_ = capacity;
      generation_ = 0;
    }
    if (++generation_ > kGenerationBits) {
      std::fill(slots_.get(), slots_.get() + slots_capacity_, Slot{0, 0});
      generation_ = 1;
    }
    mask_ = capacity - 1;
  }

  // Pairs every unit whose key an earlier unit has with the first such unit.
  void pair_with_first_of_key(const uint8_t* t) {
    next_generation();
    const size_t n_units = units_.size();
    for (UnitRef& unit : units_) unit.key = key_of(t, unit);
    // The slots of a long text's units lie beyond the L1 cache, and each
    // probe would wait on its load: the slot of a unit a few ahead is
    // fetched while this one's is probed.
    constexpr size_t kAhead = 8;
    Pair* pairs = pairs_.begin();
    size_t n_pairs = 0;
    for (size_t k = 0; k < n_units; ++k) {
      if (k + kAhead < n_units) __builtin_prefetch(&slots_[home_of(units_[k + kAhead].key)]);
      const uint64_t key = units_[k].key;
      Slot& slot = slots_[slot_of(key)];
      const bool seen = slot.key == key;
      pairs[n_pairs].earlier = slot.unit;  // field by field: see BoxCloser::push
      pairs[n_pairs].later = k;
      n_pairs += seen;
      slot.unit = seen ? slot.unit : k;
      slot.key = key;
    }
    pairs_.resize(n_pairs);
  }

  Slots<UnitRef> units_;
  Slots<Pair> pairs_;
  std::unique_ptr<Slot[]> slots_;  // cleared, unlike Slots: a key is read before it is written
  std::unordered_multimap<uint64_t, size_t> unlike_;  // units unlike the first of their key, by hash of their bytes
  size_t slots_capacity_ = 0, mask_ = 0;
  uint64_t generation_ = 0;
};

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

struct AnalyzeScratch {
  std::vector<uint64_t> label_pairs;
  std::vector<int64_t> match_counts;  // per category: matches
  std::vector<int64_t> steps_with;    // per category: steps flagged with it
  std::vector<size_t> labelled;     // steps labelled other than progress, in order
  Layout layout;
  // For repetition: the bytes of all units, and the long units gathered in
  // `repeats` (compared only when the metrics ask).
  uint64_t unit_bytes = 0;
  StepList steps;
  std::vector<Step> marker_cut;  // marker mode's steps, before they replace the paragraphs
  std::vector<uint64_t> answer_hashes;
  std::vector<uint8_t> answer_bytes;  // a normalized answer value
  BoxCloser boxes;
  RepeatFinder repeats;
};

const StepList& scratch_steps(const AnalyzeScratch& s) { return s.steps; }

namespace {

// Trims whitespace off both ends; an all-whitespace span becomes empty.
Span trim(const uint8_t* t, Span s) {
  while (s.start < s.end && kBytes.whitespace[t[s.start]]) ++s.start;
  while (s.end > s.start && kBytes.whitespace[t[s.end - 1]]) --s.end;
  return s;
}

// One past the last non-whitespace byte before `pos`, or 0 if none. The
// loop back over blocks runs only where whitespace fills a block's start.
uint64_t text_end_before(const Blocks& blocks, uint64_t pos) {
  size_t b = pos / 64;
  uint64_t m = pos % 64 ? blocks[b].text & ((uint64_t{1} << (pos % 64)) - 1) : 0;
  while (m == 0 && b > 0) m = blocks[--b].text;
  return m ? b * 64 + 64 - __builtin_clzll(m) : 0;
}

// Walks the units of a text and writes its steps: each unit from its start
// to one past its last non-whitespace byte, handed to `each_unit(start,
// end)`, and each step from a unit whose step bit is set to the end of the
// unit before the next such one.
//
// The walk goes over the list of unit starts, not over the blocks' bits: a
// loop over the bits of each block ended at a branch that the count of
// units per block made hard to predict. For the same reason each unit
// writes the open step's slot, and only the count says whether the slot is
// kept: three of five units start a paragraph on the real traces.
template <typename EachUnit>
void units_and_steps(const Layout& layout, uint64_t n, StepList& steps, EachUnit&& each_unit) {
  const Blocks& blocks = layout.blocks;
  const Offsets& starts = layout.unit_starts;
  Step* out = steps.reset(starts.size());
  if (starts.empty()) return;
  size_t kept = 0;
  uint64_t step_start = starts[0];
  for (size_t k = 1; k < starts.size(); ++k) {
    const uint64_t start = starts[k], end = text_end_before(blocks, start);
    each_unit(starts[k - 1], end);
    out[kept].start = step_start;
    out[kept].end = end;
    const uint64_t starts_step = (blocks[start / 64].step >> (start % 64)) & 1;
    kept += starts_step;
    step_start = starts_step ? start : step_start;
  }
  const uint64_t end = text_end_before(blocks, n);
  each_unit(starts[starts.size() - 1], end);
  out[kept++] = {step_start, end, 0, 0};
  steps.resize(kept);
}

// The starts that begin the steps of `mode`; marker mode starts from
// paragraphs and cuts them further.
StepStarts step_starts_of(StepMode mode) {
  switch (mode) {
    case StepMode::kLine: return StepStarts::kLines;
    case StepMode::kSentence: return StepStarts::kUnits;
    case StepMode::kParagraph:
    case StepMode::kMarker: break;
  }
  return StepStarts::kParagraphs;
}

// Set bits of `member` at offsets up to and including `at`, which lies
// inside the text: the count the layout keeps for the blocks before, and
// the block's own bits.
uint64_t rank(const Blocks& blocks, uint64_t at, uint64_t BlockBits::*member, uint64_t BlockBits::*before) {
  const BlockBits& block = blocks[at / 64];
  return block.*before + static_cast<uint64_t>(__builtin_popcountll(block.*member & (~uint64_t{0} >> (63 - at % 64))));
}

// Whether a match at `at` starts inside the first sentence of a step that
// starts at `step_start`: no sentence end, and no byte after an LF, lies in
// (step_start, at].
bool in_opening(const Blocks& blocks, uint64_t step_start, uint64_t at) {
  return rank(blocks, at, &BlockBits::opening, &BlockBits::openings_before) ==
         rank(blocks, step_start, &BlockBits::opening, &BlockBits::openings_before);
}

// Marker mode: cut paragraphs before every match that starts a sentence. At
// a line start the cut goes before the line's prefix bytes, so a bullet or
// heading mark stays with the step it opens.
void cut_at_markers(const uint8_t* t, const std::vector<Match>& matches, StepList& steps, std::vector<Step>& cut) {
  cut.clear();
  RunCache line, space;
  size_t m = 0;
  for (const Step& para : steps) {
    uint64_t start = para.start;
    for (; m < matches.size() && matches[m].start < para.end; ++m) {
      const uint64_t at = matches[m].start;
      if (at <= start) continue;
      const uint64_t prefix = line.run_start(t, at, kBytes.line_prefix);
      const bool at_line_start = prefix == 0 || t[prefix - 1] == '\n';
      if (!at_line_start && !sentence_start_at(t, at, line, space)) continue;
      const uint64_t at_cut = at_line_start ? prefix : at;
      if (at_cut <= start) continue;  // an indented bullet opening the step: its prefix is before it
      const Span before = trim(t, {start, at_cut});
      if (before.start == before.end) continue;  // nothing of this step precedes the cut
      cut.push_back({start, before.end, 0, 0});
      start = trim(t, {at_cut, para.end}).start;
    }
    cut.push_back({start, para.end, 0, 0});
  }
  std::copy(cut.begin(), cut.end(), steps.reset(cut.size()));
  steps.resize(cut.size());
}

bool phrase_value(const uint8_t* t, uint64_t n, uint64_t after, Span& value) {
  uint64_t i = after;
  while (i < n && (kBytes.whitespace[t[i]] || t[i] == ':') && t[i] != '\n') ++i;
  uint64_t start = i, limit = std::min(n, start + kMaxPhraseAnswerBytes);
  while (i < limit && t[i] != '\n' && !(kBytes.sentence_end[t[i]] && t[i] != ':' &&
                                        (i + 1 == n || kBytes.whitespace[t[i + 1]])))
    ++i;
  value = trim(t, {start, i});
  if (value.start == value.end) return false;
  // A value holding a box is left to the box, which is an answer itself.
  for (const char* box : kBoxOpeners) {
    const uint8_t* found = std::search(t + value.start, t + value.end, box, box + std::strlen(box));
    if (found != t + value.end) return false;
  }
  return true;
}

bool is_math_delimiter(uint8_t c) { return c == '(' || c == ')' || c == '[' || c == ']'; }

// Hash of an answer value without whitespace, '$', the \( \) \[ \] math
// delimiters and trailing dots. `buffer` is reused from answer to answer.
uint64_t normalized_hash(const uint8_t* t, Span v, std::vector<uint8_t>& buffer) {
  buffer.resize(v.end - v.start);
  uint8_t* out = buffer.data();
  for (uint64_t i = v.start; i < v.end; ++i) {
    uint8_t c = t[i];
    if (kBytes.whitespace[c] || c == '$') continue;
    if (c == '\\' && i + 1 < v.end && is_math_delimiter(t[i + 1])) {
      ++i;
      continue;
    }
    *out++ = c;
  }
  while (out > buffer.data() && out[-1] == '.') --out;
  return hash_bytes(buffer.data(), static_cast<uint64_t>(out - buffer.data()));
}

bool folded_equal(const uint8_t* t, uint64_t n, uint64_t at, const char* word) {
  for (; *word; ++word, ++at)
    if (at >= n || kBytes.fold[t[at]] != static_cast<uint8_t>(*word)) return false;
  return true;
}

bool word_edge(const uint8_t* t, uint64_t n, uint64_t at) {
  return at == 0 || at >= n || !kBytes.word[t[at - 1]] || !kBytes.word[t[at]];
}

// An answer phrase around "answer" at `at`: "final answer is", "final answer:"
// or "the answer is", with word boundaries at its word ends. Sets the
// phrase's start and end.
bool answer_phrase(const uint8_t* t, uint64_t n, uint64_t at, Span& phrase) {
  if (!folded_equal(t, n, at, "answer")) return false;
  const uint64_t after = at + 6;
  const bool is = folded_equal(t, n, after, " is") && (after + 3 == n || !kBytes.word[t[after + 3]]);
  const bool colon = after < n && t[after] == ':';
  const bool final_before = at >= 6 && folded_equal(t, n, at - 6, "final ") && word_edge(t, n, at - 6);
  const bool the_before = at >= 4 && folded_equal(t, n, at - 4, "the ") && word_edge(t, n, at - 4);
  if (final_before && (is || colon)) {
    phrase = {at - 6, is ? after + 3 : after + 1};
    return true;
  }
  if (the_before && is) {
    phrase = {at - 4, after + 3};
    return true;
  }
  return false;
}

// How often each label follows each other, over consecutive steps: cell
// a * L + b counts label b after label a. Only pairs with a labelled step
// are visited, each once (at its later step when that one is labelled);
// the rest are (progress, progress) pairs, counted by subtraction.
const std::vector<uint64_t>& count_label_pairs(const StepList& steps, const std::vector<size_t>& labelled, int L,
                                               std::vector<uint64_t>& pairs) {
  const int32_t progress = L - 1;
  pairs.assign(size_t(L) * L, 0);
  uint64_t visited = 0;
  for (size_t k : labelled) {
    if (k > 0) {
      ++pairs[size_t(steps[k - 1].label) * L + steps[k].label];
      ++visited;
    }
    if (k + 1 < steps.size() && steps[k + 1].label == progress) {
      ++pairs[size_t(steps[k].label) * L + progress];
      ++visited;
    }
  }
  if (!steps.empty()) pairs[size_t(progress) * L + progress] += steps.size() - 1 - visited;
  return pairs;
}

// The longest run of consecutive steps labelled `label`, from the labelled
// steps in order.
int64_t longest_run(const StepList& steps, const std::vector<size_t>& labelled, int32_t label) {
  int64_t run = 0, longest = 0;
  size_t previous = 0;
  for (size_t k : labelled) {
    if (steps[k].label != label)
      run = 0;
    else
      run = run > 0 && previous + 1 == k ? run + 1 : 1;
    if (run > 0) previous = k;
    longest = std::max(longest, run);
  }
  return longest;
}

}  // namespace

Analyzer::Analyzer(const Scanner& markers, std::vector<int32_t> category_of, int n_categories, int branch_category,
                   StepMode mode)
    : markers_(markers),
      category_of_(std::move(category_of)),
      n_categories_(n_categories),
      branch_category_(branch_category),
      mode_(mode) {
  if (n_categories_ < 1 || n_categories_ > 32) throw std::invalid_argument("between 1 and 32 categories are supported");
  if (category_of_.size() != markers_.pattern_count())
    throw std::invalid_argument("one category per pattern is required");
  for (int32_t c : category_of_)
    if (c < 0 || c >= n_categories_) throw std::invalid_argument("pattern category out of range");
}

Analyzer::~Analyzer() = default;

void Analyzer::steps_of(const TextRef& text, const std::vector<Match>& matches, AnalyzeScratch& s) const {
  const uint8_t* t = text.data;
  compute_layout(t, text.size, step_starts_of(mode_), s.layout);
  // Locals, not the scratch's fields, so that the unit loop keeps them in
  // registers.
  RepeatFinder::UnitRef* long_units = s.repeats.start(s.layout.unit_starts.size());
  size_t n_long = 0;
  uint64_t unit_bytes = 0;
  units_and_steps(s.layout, text.size, s.steps, [&](uint64_t start, uint64_t end) {
    unit_bytes += end - start;
    long_units[n_long].start = start;
    long_units[n_long].length = end - start;
    n_long += end - start >= kRepeatableUnitBytes;
  });
  s.unit_bytes = unit_bytes;
  s.repeats.keep(n_long);
  if (mode_ == StepMode::kMarker) cut_at_markers(t, matches, s.steps, s.marker_cut);
  label_steps(matches, s);
}

// Flags and labels. Each match is given to the step that holds it: by rank
// in the modes whose steps start at step bits (the step bits up to the
// match), or by a walk over steps and matches together in marker mode. (A
// walk over steps asked of every step whether a match lies in it, and the
// answer was hard to predict.) The labelled steps are listed in order, for
// the metrics that only they change.
void Analyzer::label_steps(const std::vector<Match>& matches, AnalyzeScratch& s) const {
  const int32_t progress = n_categories_;
  for (Step& step : s.steps) {
    step.label = progress;
    step.flags = 0;
  }
  s.steps_with.assign(size_t(n_categories_), 0);
  s.labelled.clear();
  if (matches.empty()) return;
  const Blocks& blocks = s.layout.blocks;
  // A step's label is the category of its first match in its first sentence.
  const auto take = [&](size_t k, const Match& match) {
    Step& step = s.steps[k];
    const int32_t cat = category_of_[match.pattern];
    const uint32_t bit = 1u << cat;
    s.steps_with[cat] += (step.flags & bit) == 0;
    step.flags |= bit;
    if (step.label == progress && in_opening(blocks, step.start, match.start)) {
      step.label = cat;
      s.labelled.push_back(k);
    }
  };
  if (mode_ == StepMode::kMarker) {
    size_t m = 0;
    for (size_t k = 0; k < s.steps.size(); ++k) {
      while (m < matches.size() && matches[m].start < s.steps[k].start) ++m;
      for (; m < matches.size() && matches[m].start < s.steps[k].end; ++m) take(k, matches[m]);
    }
    return;
  }
  for (const Match& match : matches) {
    const uint64_t steps_up_to = rank(blocks, match.start, &BlockBits::step, &BlockBits::steps_before);
    // Before the first step, or in the whitespace after a step: a match
    // that starts with whitespace.
    if (steps_up_to == 0 || match.start >= s.steps[steps_up_to - 1].end) continue;
    take(steps_up_to - 1, match);
  }
}

AnswerInfo Analyzer::answers_of(const TextRef& text, AnalyzeScratch& s) const {
  const uint8_t* t = text.data;
  const uint64_t n = text.size;
  AnswerInfo info;
  s.answer_hashes.clear();
  s.boxes.reset(t, n);
  uint64_t covered = 0;  // answers do not overlap: a phrase's value may hold another hint
  for (uint64_t at : s.layout.answer_hints) {
    if (at < covered) continue;
    Span value, whole;
    if (const uint64_t open = box_content_at(t, n, at)) {
      uint64_t close;
      if (!s.boxes.close_of(open, close)) continue;
      value = {open, close};
      whole = {at, value.end + 1};  // through the closing brace
    } else {
      Span phrase;
      if (!answer_phrase(t, n, at, phrase) || phrase.start < covered || !phrase_value(t, n, phrase.end, value))
        continue;
      whole = {phrase.start, value.end};
    }
    if (info.first_offset < 0) {
      info.first_offset = static_cast<int64_t>(whole.start);
      info.first_end = whole.end;
    }
    s.answer_hashes.push_back(normalized_hash(t, value, s.answer_bytes));
    covered = whole.end;
  }
  std::sort(s.answer_hashes.begin(), s.answer_hashes.end());
  info.distinct = std::unique(s.answer_hashes.begin(), s.answer_hashes.end()) - s.answer_hashes.begin();
  return info;
}

void Analyzer::write_metrics(size_t row, const TextRef& text, const std::vector<Match>& matches, AnalyzeScratch& s,
                             const MetricColumns& out) const {
  steps_of(text, matches, s);
  const int C = n_categories_, L = C + 1;
  const uint64_t n_steps = s.steps.size(), words = s.layout.words;
  std::vector<int64_t>& count = s.match_counts;
  count.assign(size_t(C), 0);
  for (const Match& m : matches) ++count[category_of_[m.pattern]];
  for (int c = 0; c < C; ++c) {
    out.count[c * out.rows + row] = count[c];
    out.steps[c * out.rows + row] = s.steps_with[c];
  }

  out.n_bytes[row] = static_cast<int64_t>(text.size);
  out.n_words[row] = static_cast<int64_t>(words);
  out.n_steps[row] = static_cast<int64_t>(n_steps);
  out.branch_step_ratio[row] = n_steps ? double(s.steps_with[branch_category_]) / double(n_steps) : kMissing;
  out.markers_per_1k_words[row] = words ? 1000.0 * double(matches.size()) / double(words) : kMissing;

  const std::vector<uint64_t>& pairs = count_label_pairs(s.steps, s.labelled, L, s.label_pairs);
  double* p = out.transitions + row;
  for (int a = 0; a < L; ++a) {
    uint64_t total = 0;
    for (int b = 0; b < L; ++b) total += pairs[size_t(a) * L + b];
    for (int b = 0; b < L; ++b)
      p[(size_t(a) * L + b) * out.rows] = total > 0 ? double(pairs[size_t(a) * L + b]) / double(total) : kMissing;
  }

  out.longest_branch_run[row] = longest_run(s.steps, s.labelled, branch_category_);
  out.repetition[row] =
      s.unit_bytes ? double(s.repeats.repeated_bytes(text.data)) / double(s.unit_bytes) : kMissing;

  AnswerInfo answers = answers_of(text, s);
  out.first_answer_offset[row] = answers.first_offset;
  out.n_distinct_answers[row] = answers.distinct;
  out.tail_after_first_answer[row] =
      answers.first_offset < 0 ? kMissing : double(text.size - answers.first_end) / double(text.size);
}

void Analyzer::run(
    const std::vector<TextRef>& texts, int workers,
    const std::function<void(size_t, const TextRef&, const std::vector<Match>&, AnalyzeScratch&)>& each) const {
  std::vector<std::unique_ptr<AnalyzeScratch>> scratch;
  for (int w = 0; w < workers; ++w) scratch.push_back(std::make_unique<AnalyzeScratch>());
  markers_.scan(texts, workers, [&](int worker, size_t i, const std::vector<Match>& matches) {
    each(i, texts[i], matches, *scratch[worker]);
  });
}

void Analyzer::analyze(const std::vector<TextRef>& texts, int workers, const MetricColumns& out) const {
  run(texts, workers, [&](size_t i, const TextRef& text, const std::vector<Match>& matches, AnalyzeScratch& s) {
    write_metrics(i, text, matches, s, out);
  });
}

}  // namespace cotsieve
