// Steps, labels and per-trace metrics, computed in the same native pass as
// the scan. docs/metrics.md is the specification.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "analyzer_metrics.h"
#include "scanner.h"
#include "slots.h"

namespace cotsieve {

enum class StepMode : int { kParagraph = 0, kLine = 1, kSentence = 2, kMarker = 3 };

struct Step {
  uint64_t start, end;
  int32_t label;   // a category index, or the category count for "progress"
  uint32_t flags;  // bit c: a match of category c starts inside the step
};

// The steps of one text: the segmenter writes each slot before it decides
// whether to keep it.
using StepList = Slots<Step>;

struct AnalyzeScratch;

class Analyzer {
 public:
  // Analyses with the scanner `markers`, which must outlive the analyzer; a
  // pattern's category is its PatternSpec's.
  Analyzer(const Scanner& markers, int n_categories, int branch_category, int hesitate_category, StepMode mode);
  ~Analyzer();

  int n_categories() const { return n_categories_; }

  // Scans and analyses every text on `workers` threads.
  void analyze(const std::vector<TextRef>& texts, int workers, const MetricColumns& out) const;

  // Steps of every text; `visit(text, steps)` is called per text, possibly
  // from several threads at once.
  template <typename Visit>
  void segment(const std::vector<TextRef>& texts, int workers, Visit&& visit) const;

 private:
  void steps_of(const TextRef& text, const std::vector<Match>& matches, AnalyzeScratch& s) const;
  void label_steps(const std::vector<Match>& matches, AnalyzeScratch& s) const;
  void write_metrics(size_t row, const TextRef& text, const std::vector<Match>& matches, AnalyzeScratch& s,
                     const MetricColumns& out) const;
  void run(const std::vector<TextRef>& texts, int workers,
           const std::function<void(size_t, const TextRef&, const std::vector<Match>&, AnalyzeScratch&)>& each) const;

  const Scanner& markers_;
  // The scanner's pattern categories as one array: the label and count loops
  // read one per match.
  std::vector<int32_t> category_of_;
  int n_categories_;
  int branch_category_;
  int hesitate_category_;
  StepMode mode_;
};

// Exposed for segment(): the steps last computed into a scratch.
const StepList& scratch_steps(const AnalyzeScratch& s);

template <typename Visit>
void Analyzer::segment(const std::vector<TextRef>& texts, int workers, Visit&& visit) const {
  run(texts, workers, [&](size_t i, const TextRef& text, const std::vector<Match>& matches, AnalyzeScratch& s) {
    steps_of(text, matches, s);
    visit(i, scratch_steps(s));
  });
}

}  // namespace cotsieve
