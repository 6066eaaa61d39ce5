#include "analyzer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>

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

struct Line {
  uint64_t start, end;   // trimmed, never empty
  uint64_t opening_end;  // end of the first sentence of a step that starts here (docs/metrics.md)
  bool opens_paragraph;  // a blank line, or the text start, comes before it
};

// The lines of one text, in storage that only grows. Room is made for one
// line per LF, but blank lines take none, so the slots are left unwritten
// (default-initialized) rather than cleared: on a text of mostly blank-line
// paragraphs, clearing them all doubled the memory this touched.
struct Lines {
  std::unique_ptr<Line[]> store;
  size_t capacity = 0, count = 0;

  void make_room(size_t n) {
    if (capacity >= n) return;
    store.reset(new Line[n]);
    capacity = n;
  }
  Line* begin() { return store.get(); }
  Line* end() { return store.get() + count; }
};

// The units of one text seen so far, for repetition: a unit is repeated when
// an earlier unit has the same bytes. A key made of the unit's length and its
// first and last eight bytes picks the slot, and only on a key match are the
// bytes compared, so the answer is exact. (Hashing every byte of every unit
// cost a loop whose length the branch predictor could not know, and a hash
// left a chance of collisions.) Units are at least kRepeatableUnitBytes long,
// so both eight-byte loads lie inside the unit. Reused from text to text;
// only the keys are cleared, the spans are read only behind a written key.
class UnitSet {
 public:
  void reset(size_t expected) {
    size_t capacity = 16;
    while (capacity < 2 * expected) capacity <<= 1;
    if (capacity_ < capacity) {
      keys_.reset(new uint64_t[capacity]);
      starts_.reset(new uint64_t[capacity]);
      lengths_.reset(new uint64_t[capacity]);
      capacity_ = capacity;
    }
    std::fill(keys_.get(), keys_.get() + capacity, 0);
    mask_ = capacity - 1;
  }

  // True if an earlier unit has the bytes of t[start, start + length);
  // otherwise remembers this unit and returns false.
  bool seen_before(const uint8_t* t, uint64_t start, uint64_t length) {
    const uint8_t* p = t + start;
    const uint64_t key = mix(load8(p) ^ kHashKeys[2] ^ length, load8(p + length - 8) ^ kHashKeys[3]) | 1;  // 0: empty
    for (size_t i = key & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == 0) {
        keys_[i] = key;
        starts_[i] = start;
        lengths_[i] = length;
        return false;
      }
      if (keys_[i] == key && lengths_[i] == length && std::memcmp(t + starts_[i], p, length) == 0) return true;
    }
  }

 private:
  std::unique_ptr<uint64_t[]> keys_, starts_, lengths_;
  size_t capacity_ = 0, mask_ = 0;
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
    boxes_.push_back({content, std::min(n_, content + kMaxBoxBytes), kStillOpen, depth_});
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
  std::vector<double> transitions;
  Layout layout;
  Lines lines;  // non-blank lines
  uint64_t unit_bytes = 0, repeated_bytes = 0;  // for repetition
  std::vector<Step> steps;
  std::vector<uint64_t> answer_hashes;
  std::vector<uint8_t> answer_bytes;  // a normalized answer value
  BoxCloser boxes;
  UnitSet seen_units;
};

const std::vector<Step>& scratch_steps(const AnalyzeScratch& s) { return s.steps; }

namespace {

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

// Trims whitespace off both ends; an all-whitespace span becomes empty.
Span trim(const uint8_t* t, Span s) {
  while (s.start < s.end && kBytes.whitespace[t[s.start]]) ++s.start;
  while (s.end > s.start && kBytes.whitespace[t[s.end - 1]]) --s.end;
  return s;
}

// Non-blank lines, trimmed, and whether each opens a paragraph. A first
// sentence that starts at a line start ends at the line's first sentence end,
// or just past its LF: `opening_end` starts as the latter, and for_each_unit
// lowers it. Lines are written in place: a push_back of a struct built on the
// stack stalls on reloading it.
void collect_lines(const uint8_t* t, uint64_t n, const Layout& layout, Lines& lines) {
  const Offsets& lfs = layout.newlines;
  lines.make_room(lfs.size() + 1);
  Line* out = lines.begin();
  bool gap = true;
  uint64_t start = 0;
  for (size_t k = 0; k <= lfs.size(); ++k) {
    const bool has_lf = k < lfs.size();
    const uint64_t end = has_lf ? lfs[k] : n;
    const Span s = trim(t, {start, end});
    if (s.start == s.end) {
      gap = true;
    } else {
      out->start = s.start;
      out->end = s.end;
      out->opening_end = has_lf ? end + 1 : n;
      out->opens_paragraph = gap;
      ++out;
      gap = false;
    }
    start = end + 1;
  }
  lines.count = static_cast<size_t>(out - lines.begin());
}

// Calls `each(piece)` for every line cut after each sentence end inside it,
// and sets each line's `opening_end` to its first sentence end, if it has one.
template <typename Each>
void for_each_unit(const uint8_t* t, Lines& lines, const Layout& layout, Each&& each) {
  const auto& ends = layout.sentence_ends;
  size_t e = 0;
  for (Line& line : lines) {
    uint64_t start = line.start;
    while (e < ends.size() && ends[e] <= line.start) ++e;
    // A sentence end lies inside its line's trimmed span, so it comes before the LF.
    if (e < ends.size() && ends[e] <= line.end) line.opening_end = ends[e];
    for (; e < ends.size() && ends[e] < line.end; ++e) {
      const Span piece = trim(t, {start, ends[e]});
      if (piece.start < piece.end) each(piece);
      start = ends[e];
    }
    const Span piece = trim(t, {start, line.end});
    if (piece.start < piece.end) each(piece);
  }
}

// Paragraph steps: each starts at a line that opens a paragraph (the first
// line always does).
void paragraphs(Lines& lines, std::vector<Step>& steps) {
  for (const Line& line : lines) {
    if (line.opens_paragraph)
      steps.push_back({line.start, line.end, 0, 0});
    else
      steps.back().end = line.end;
  }
}

// Marker mode: cut paragraphs before every match that starts a sentence. At
// a line start the cut goes before the line's prefix bytes, so a bullet or
// heading mark stays with the step it opens.
void cut_at_markers(const uint8_t* t, const std::vector<Match>& matches, std::vector<Step>& steps) {
  std::vector<Step> cut;
  cut.reserve(steps.size());
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
  steps.swap(cut);
}

// End of a step's first sentence. Steps arrive in order, so the two cursors
// only move forward over the text's LFs and sentence ends.
struct OpeningFinder {
  const Layout& layout;
  size_t nl = 0, se = 0;

  uint64_t end_of_first_sentence(const Step& step) {
    const auto& nls = layout.newlines;
    const auto& ses = layout.sentence_ends;
    while (nl < nls.size() && nls[nl] < step.start) ++nl;
    while (se < ses.size() && ses[se] <= step.start) ++se;
    uint64_t end = step.end;
    if (nl < nls.size() && nls[nl] < end) end = nls[nl] + 1;
    if (se < ses.size() && ses[se] < end) end = ses[se];
    return end;
  }
};

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
  compute_layout(t, text.size, s.layout);
  collect_lines(t, text.size, s.layout, s.lines);
  s.steps.clear();
  // Sentence units are both the sentence-mode steps and the units that
  // repetition compares, so they are hashed as they are found.
  s.unit_bytes = s.repeated_bytes = 0;
  s.seen_units.reset(s.layout.newlines.size() + s.layout.sentence_ends.size() + 1);
  for_each_unit(t, s.lines, s.layout, [&](const Span& u) {
    const uint64_t len = u.end - u.start;
    s.unit_bytes += len;
    if (len >= kRepeatableUnitBytes && s.seen_units.seen_before(t, u.start, len)) s.repeated_bytes += len;
    if (mode_ == StepMode::kSentence) s.steps.push_back({u.start, u.end, 0, 0});
  });
  switch (mode_) {
    case StepMode::kParagraph: paragraphs(s.lines, s.steps); break;
    case StepMode::kLine:
      for (const Line& l : s.lines) s.steps.push_back({l.start, l.end, 0, 0});
      break;
    case StepMode::kSentence: break;
    case StepMode::kMarker:
      paragraphs(s.lines, s.steps);
      cut_at_markers(t, matches, s.steps);
      break;
  }
  label_steps(matches, s);
}

// Flags and labels. In paragraph and line modes every step starts at a line
// start, and the line knows where the step's first sentence ends; the other
// modes look it up.
void Analyzer::label_steps(const std::vector<Match>& matches, AnalyzeScratch& s) const {
  const int32_t progress = n_categories_;
  const bool from_lines = mode_ == StepMode::kParagraph || mode_ == StepMode::kLine;
  const Line* line = s.lines.begin();  // the first line of the current step, in those modes
  size_t m = 0;
  OpeningFinder opening{s.layout};
  for (Step& step : s.steps) {
    uint64_t line_opening = 0;
    if (from_lines) {
      while (mode_ == StepMode::kParagraph && !line->opens_paragraph) ++line;
      line_opening = (line++)->opening_end;
    }
    while (m < matches.size() && matches[m].start < step.start) ++m;
    if (m == matches.size() || matches[m].start >= step.end) {
      step.label = progress;  // no match: the common case needs no first sentence
      continue;
    }
    const uint64_t opening_end =
        from_lines ? std::min(step.end, line_opening) : opening.end_of_first_sentence(step);
    step.label = progress;
    for (size_t j = m; j < matches.size() && matches[j].start < step.end; ++j) {
      int32_t cat = category_of_[matches[j].pattern];
      step.flags |= 1u << cat;
      if (step.label == progress && matches[j].start < opening_end) step.label = cat;
    }
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

double Analyzer::repetition_of(const AnalyzeScratch& s) const {
  return s.unit_bytes ? double(s.repeated_bytes) / double(s.unit_bytes) : kMissing;
}

void Analyzer::write_metrics(size_t row, const TextRef& text, const std::vector<Match>& matches, AnalyzeScratch& s,
                             const MetricColumns& out) const {
  steps_of(text, matches, s);
  const int C = n_categories_, L = C + 1;
  const uint64_t n_steps = s.steps.size(), words = s.layout.words;
  int64_t* count = out.count + row * C;
  int64_t* steps = out.steps + row * C;
  std::fill(count, count + C, 0);
  std::fill(steps, steps + C, 0);
  for (const Match& m : matches) ++count[category_of_[m.pattern]];
  for (const Step& st : s.steps)
    for (uint32_t f = st.flags; f != 0; f &= f - 1) ++steps[__builtin_ctz(f)];

  out.n_bytes[row] = static_cast<int64_t>(text.size);
  out.n_words[row] = static_cast<int64_t>(words);
  out.n_steps[row] = static_cast<int64_t>(n_steps);
  out.branch_step_ratio[row] = n_steps ? double(steps[branch_category_]) / double(n_steps) : kMissing;
  out.markers_per_1k_words[row] = words ? 1000.0 * double(matches.size()) / double(words) : kMissing;

  std::vector<double>& follows = s.transitions;
  follows.assign(size_t(L) * L, 0.0);
  int64_t run = 0, longest = 0;
  for (size_t k = 0; k < n_steps; ++k) {
    if (k + 1 < n_steps) follows[size_t(s.steps[k].label) * L + s.steps[k + 1].label] += 1;
    run = s.steps[k].label == branch_category_ ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  double* p = out.transitions + row * size_t(L) * L;
  for (int a = 0; a < L; ++a) {
    double total = 0;
    for (int b = 0; b < L; ++b) total += follows[size_t(a) * L + b];
    for (int b = 0; b < L; ++b) p[a * L + b] = total > 0 ? follows[size_t(a) * L + b] / total : kMissing;
  }
  out.longest_branch_run[row] = longest;
  out.repetition[row] = repetition_of(s);

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
