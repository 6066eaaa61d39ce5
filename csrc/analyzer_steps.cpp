#include "analyzer.h"
#include "analyzer_scratch.h"
#include "analyzer_steps.h"
#include "runs.h"

namespace cotsieve {

namespace {

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

}  // namespace

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
  // A step's label is the category of its first match in its first
  // sentence, except that a hesitation ("Wait,", "Hmm,") names no direction
  // yet: a later match of another category in that sentence ("Wait, maybe
  // not") says which way the step goes, and takes the label.
  const auto take = [&](size_t k, const Match& match) {
    Step& step = s.steps[k];
    const int32_t cat = category_of_[match.pattern];
    const uint32_t bit = 1u << cat;
    s.steps_with[cat] += (step.flags & bit) == 0;
    step.flags |= bit;
    const bool unlabelled = step.label == progress;
    const bool overrides = step.label == hesitate_category_ && cat != hesitate_category_;
    if ((unlabelled || overrides) && in_opening(blocks, step.start, match.start)) {
      step.label = cat;
      if (unlabelled) s.labelled.push_back(k);
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

}  // namespace cotsieve
