#include "analyzer_metrics.h"

#include <algorithm>
#include <limits>

#include "analyzer.h"
#include "analyzer_scratch.h"

namespace cotsieve {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

namespace {

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

void Analyzer::write_metrics(size_t row, const TextRef& text, const std::vector<Match>& matches, AnalyzeScratch& s,
                             const MetricColumns& out) const {
  steps_of(text, matches, s);
  const int C = n_categories_, L = C + 1;
  const uint64_t n_steps = s.steps.size(), words = s.layout.words;
  std::vector<int64_t>& count = s.match_counts;
  count.assign(size_t(C), 0);
  for (const Match& m : matches) ++count[category_of_[m.pattern]];
  for (int c = 0; c < C; ++c) {
    out.i64(kCount, c)[row] = count[c];
    out.i64(kSteps, c)[row] = s.steps_with[c];
  }

  out.i64(kNBytes)[row] = static_cast<int64_t>(text.size);
  out.i64(kNWords)[row] = static_cast<int64_t>(words);
  out.i64(kNSteps)[row] = static_cast<int64_t>(n_steps);
  out.f64(kBranchStepRatio)[row] = n_steps ? double(s.steps_with[branch_category_]) / double(n_steps) : kMissing;
  out.f64(kMarkersPer1kWords)[row] = words ? 1000.0 * double(matches.size()) / double(words) : kMissing;

  const std::vector<uint64_t>& pairs = count_label_pairs(s.steps, s.labelled, L, s.label_pairs);
  double* p = out.f64(kTransitions) + row;
  for (int a = 0; a < L; ++a) {
    uint64_t total = 0;
    for (int b = 0; b < L; ++b) total += pairs[size_t(a) * L + b];
    for (int b = 0; b < L; ++b)
      p[(size_t(a) * L + b) * out.rows] = total > 0 ? double(pairs[size_t(a) * L + b]) / double(total) : kMissing;
  }

  out.i64(kLongestBranchRun)[row] = longest_run(s.steps, s.labelled, branch_category_);
  out.f64(kRepetition)[row] =
      s.unit_bytes ? double(s.repeats.repeated_bytes(text.data)) / double(s.unit_bytes) : kMissing;

  const AnswerInfo answers = s.answers.find(text, s.layout.answer_hints);
  out.i64(kFirstAnswerOffset)[row] = answers.first_offset;
  out.i64(kNDistinctAnswers)[row] = answers.distinct;
  out.f64(kTailAfterFirstAnswer)[row] =
      answers.first_offset < 0 ? kMissing : double(text.size - answers.first_end) / double(text.size);
}

}  // namespace cotsieve
