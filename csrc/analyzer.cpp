#include "analyzer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "bytes.h"
#include "runs.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cotsieve {

constexpr uint64_t kRepeatableUnitBytes = 16;
constexpr uint64_t kMaxPhraseAnswerBytes = 200;
constexpr uint64_t kMaxBoxBytes = 4096;  // bounds the brace walk of an unclosed box
constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

struct Span {
  uint64_t start, end;
};

// Where the lines and sentences of a text are, from one vector pass.
struct Layout {
  std::vector<uint64_t> newlines;       // offsets of LF
  std::vector<uint64_t> sentence_ends;  // offset just past a . ! ? followed by whitespace or the end
  uint64_t words = 0;
};

// Open-addressing set of 64-bit unit hashes, reused from text to text.
class HashSet {
 public:
  void reset(size_t expected) {
    size_t cap = 16;
    while (cap < 2 * expected) cap <<= 1;
    if (slots_.size() < cap) slots_.resize(cap);
    std::fill(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(cap), 0);
    mask_ = cap - 1;
  }
  // True if `h` was new.
  bool insert(uint64_t h) {
    h |= 1;  // 0 marks an empty slot
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] == h) return false;
      if (slots_[i] == 0) {
        slots_[i] = h;
        return true;
      }
    }
  }

 private:
  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
};

struct AnalyzeScratch {
  ScanScratchPtr answer_scan = make_scan_scratch();
  std::vector<Match> answer_matches;
  std::vector<double> transitions;
  Layout layout;
  std::vector<Span> lines;  // non-blank lines, trimmed
  std::vector<bool> blank_before;
  std::vector<Span> units;  // sentence pieces
  std::vector<Step> steps;
  std::vector<uint64_t> answer_hashes;
  HashSet seen_units;
};

const std::vector<Step>& scratch_steps(const AnalyzeScratch& s) { return s.steps; }

namespace {

uint64_t hash_bytes(const uint8_t* p, uint64_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, p + i, 8);
    h = (h ^ (chunk * 0x87c37b91114253d5ull));
    h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937full;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p + i, n - i);
  h ^= tail * 0x87c37b91114253d5ull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 29);
}

void note_terminators(const uint8_t* t, uint64_t n, uint64_t base, uint32_t mask, Layout& out) {
  for (; mask != 0; mask &= mask - 1) {
    uint64_t p = base + static_cast<uint64_t>(__builtin_ctz(mask));
    if (p + 1 == n || kBytes.whitespace[t[p + 1]]) out.sentence_ends.push_back(p + 1);
  }
}

void compute_layout(const uint8_t* t, uint64_t n, Layout& out) {
  out.newlines.clear();
  out.sentence_ends.clear();
  out.words = 0;
  bool prev_space = true;
  uint64_t i = 0;
#if defined(__SSE2__)
  const __m128i lf = _mm_set1_epi8('\n'), sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t'),
                cr = _mm_set1_epi8('\r'), dot = _mm_set1_epi8('.'), bang = _mm_set1_epi8('!'),
                ask = _mm_set1_epi8('?');
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t + i));
    __m128i nl = _mm_cmpeq_epi8(v, lf);
    __m128i space = _mm_or_si128(_mm_or_si128(nl, _mm_cmpeq_epi8(v, sp)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, tab), _mm_cmpeq_epi8(v, cr)));
    __m128i term = _mm_or_si128(_mm_cmpeq_epi8(v, dot), _mm_or_si128(_mm_cmpeq_epi8(v, bang), _mm_cmpeq_epi8(v, ask)));
    uint32_t space_mask = static_cast<uint32_t>(_mm_movemask_epi8(space));
    uint32_t word_starts = ~space_mask & ((space_mask << 1) | (prev_space ? 1u : 0u)) & 0xffffu;
    out.words += static_cast<uint64_t>(__builtin_popcount(word_starts));
    prev_space = (space_mask >> 15) & 1u;
    for (uint32_t m = static_cast<uint32_t>(_mm_movemask_epi8(nl)); m != 0; m &= m - 1)
      out.newlines.push_back(i + static_cast<uint64_t>(__builtin_ctz(m)));
    note_terminators(t, n, i, static_cast<uint32_t>(_mm_movemask_epi8(term)), out);
  }
#endif
  for (; i < n; ++i) {
    uint8_t c = t[i];
    bool space = kBytes.whitespace[c];
    if (!space && prev_space) ++out.words;
    prev_space = space;
    if (c == '\n') out.newlines.push_back(i);
    if (c == '.' || c == '!' || c == '?') note_terminators(t, n, i, 1u, out);
  }
}

// Trims whitespace off both ends; an all-whitespace span becomes empty.
Span trim(const uint8_t* t, Span s) {
  while (s.start < s.end && kBytes.whitespace[t[s.start]]) ++s.start;
  while (s.end > s.start && kBytes.whitespace[t[s.end - 1]]) --s.end;
  return s;
}

// Non-blank lines, trimmed, and whether a blank line (or the text start)
// comes before each.
void collect_lines(const uint8_t* t, uint64_t n, const Layout& layout, std::vector<Span>& lines,
                   std::vector<bool>& blank_before) {
  lines.clear();
  blank_before.clear();
  bool gap = true;
  uint64_t start = 0;
  for (size_t k = 0; k <= layout.newlines.size(); ++k) {
    uint64_t end = k < layout.newlines.size() ? layout.newlines[k] : n;
    Span s = trim(t, {start, end});
    if (s.start == s.end) {
      gap = true;
    } else {
      lines.push_back(s);
      blank_before.push_back(gap);
      gap = false;
    }
    start = end + 1;
  }
}

// Lines cut after each sentence end inside them.
void collect_units(const uint8_t* t, const std::vector<Span>& lines, const Layout& layout, std::vector<Span>& units) {
  units.clear();
  auto end_it = layout.sentence_ends.begin();
  for (const Span& line : lines) {
    uint64_t start = line.start;
    end_it = std::lower_bound(end_it, layout.sentence_ends.end(), line.start + 1);
    for (; end_it != layout.sentence_ends.end() && *end_it < line.end; ++end_it) {
      Span piece = trim(t, {start, *end_it});
      if (piece.start < piece.end) units.push_back(piece);
      start = *end_it;
    }
    Span piece = trim(t, {start, line.end});
    if (piece.start < piece.end) units.push_back(piece);
  }
}

void paragraphs(const std::vector<Span>& lines, const std::vector<bool>& blank_before, std::vector<Step>& steps) {
  for (size_t k = 0; k < lines.size(); ++k) {
    if (blank_before[k] || steps.empty())
      steps.push_back({lines[k].start, lines[k].end, 0, 0});
    else
      steps.back().end = lines[k].end;
  }
}

// Marker mode: cut paragraphs before every match that starts a sentence.
void cut_at_markers(const uint8_t* t, const std::vector<Match>& matches, std::vector<Step>& steps) {
  std::vector<Step> cut;
  cut.reserve(steps.size());
  RunCache line, space;
  size_t m = 0;
  for (const Step& para : steps) {
    uint64_t start = para.start;
    for (; m < matches.size() && matches[m].start < para.end; ++m) {
      uint64_t at = matches[m].start;
      if (at <= start || !sentence_start_at(t, at, line, space)) continue;
      cut.push_back({start, trim(t, {start, at}).end, 0, 0});
      start = at;
    }
    cut.push_back({start, para.end, 0, 0});
  }
  steps.swap(cut);
}

uint64_t first_sentence_end(const Layout& layout, const Step& step) {
  uint64_t end = step.end;
  auto nl = std::lower_bound(layout.newlines.begin(), layout.newlines.end(), step.start);
  if (nl != layout.newlines.end() && *nl < end) end = *nl + 1;
  auto se = std::lower_bound(layout.sentence_ends.begin(), layout.sentence_ends.end(), step.start + 1);
  if (se != layout.sentence_ends.end() && *se < end) end = *se;
  return end;
}

// Box content with balanced braces, or false if it does not close in time.
bool box_value(const uint8_t* t, uint64_t n, uint64_t open, Span& value) {
  int depth = 1;
  uint64_t limit = std::min(n, open + kMaxBoxBytes);
  for (uint64_t i = open; i < limit; ++i) {
    if (t[i] == '\\') {
      ++i;  // \{ and \} are literal braces
    } else if (t[i] == '{') {
      ++depth;
    } else if (t[i] == '}' && --depth == 0) {
      value = {open, i};
      return true;
    }
  }
  return false;
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
  static const char kBox[] = "\\boxed{";
  const uint8_t* found = std::search(t + value.start, t + value.end, kBox, kBox + sizeof(kBox) - 1);
  return found == t + value.end;
}

uint64_t normalized_hash(const uint8_t* t, Span v) {
  std::string s;
  for (uint64_t i = v.start; i < v.end; ++i) {
    uint8_t c = t[i];
    if (kBytes.whitespace[c] || c == '$') continue;
    if (c == '\\' && i + 1 < v.end && std::strchr("()[]", t[i + 1]) != nullptr && t[i + 1] != 0) {
      ++i;
      continue;
    }
    s.push_back(static_cast<char>(c));
  }
  while (!s.empty() && s.back() == '.') s.pop_back();
  return hash_bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::vector<PatternSpec> answer_phrase_specs() {
  auto phrase = [](const char* text, bool boundary) {
    return PatternSpec{text, 0, false, boundary, boundary, Anchor::Any};
  };
  // The two boxes first: their index marks them as boxes below.
  return {phrase("\\boxed{", false), phrase("\\fbox{", false), phrase("final answer is", true),
          phrase("final answer:", true), phrase("the answer is", true)};
}
constexpr int32_t kBoxPatterns = 2;

}  // namespace

Analyzer::Analyzer(const Scanner& markers, std::vector<int32_t> category_of, int n_categories, int branch_category,
                   StepMode mode)
    : markers_(markers),
      answer_phrases_(answer_phrase_specs()),
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
  collect_lines(t, text.size, s.layout, s.lines, s.blank_before);
  collect_units(t, s.lines, s.layout, s.units);
  s.steps.clear();
  switch (mode_) {
    case StepMode::kParagraph: paragraphs(s.lines, s.blank_before, s.steps); break;
    case StepMode::kLine:
      for (const Span& l : s.lines) s.steps.push_back({l.start, l.end, 0, 0});
      break;
    case StepMode::kSentence:
      for (const Span& u : s.units) s.steps.push_back({u.start, u.end, 0, 0});
      break;
    case StepMode::kMarker:
      paragraphs(s.lines, s.blank_before, s.steps);
      cut_at_markers(t, matches, s.steps);
      break;
  }
  const int32_t progress = n_categories_;
  size_t m = 0;
  for (Step& step : s.steps) {
    while (m < matches.size() && matches[m].start < step.start) ++m;
    const uint64_t opening_end = first_sentence_end(s.layout, step);
    step.label = progress;
    for (size_t k = m; k < matches.size() && matches[k].start < step.end; ++k) {
      int32_t cat = category_of_[matches[k].pattern];
      step.flags |= 1u << cat;
      if (step.label == progress && matches[k].start < opening_end) step.label = cat;
    }
  }
}

AnswerInfo Analyzer::answers_of(const TextRef& text, AnalyzeScratch& s) const {
  const uint8_t* t = text.data;
  answer_phrases_.find(text, *s.answer_scan, s.answer_matches);
  AnswerInfo info;
  s.answer_hashes.clear();
  for (const Match& m : s.answer_matches) {
    Span value;
    uint64_t end;
    if (m.pattern < kBoxPatterns) {
      if (!box_value(t, text.size, m.end, value)) continue;
      end = value.end + 1;  // the closing brace
    } else {
      if (!phrase_value(t, text.size, m.end, value)) continue;
      end = value.end;
    }
    if (info.first_offset < 0) {
      info.first_offset = static_cast<int64_t>(m.start);
      info.first_end = end;
    }
    s.answer_hashes.push_back(normalized_hash(t, value));
  }
  std::sort(s.answer_hashes.begin(), s.answer_hashes.end());
  info.distinct = std::unique(s.answer_hashes.begin(), s.answer_hashes.end()) - s.answer_hashes.begin();
  return info;
}

double Analyzer::repetition_of(const TextRef& text, AnalyzeScratch& s) const {
  if (s.units.empty()) return kMissing;
  uint64_t total = 0, repeated = 0;
  s.seen_units.reset(s.units.size());
  for (const Span& u : s.units) {
    const uint64_t len = u.end - u.start;
    total += len;
    if (len >= kRepeatableUnitBytes && !s.seen_units.insert(hash_bytes(text.data + u.start, len))) repeated += len;
  }
  return static_cast<double>(repeated) / static_cast<double>(total);
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
  out.repetition[row] = repetition_of(text, s);

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
