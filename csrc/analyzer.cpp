#include "analyzer.h"

#include <memory>
#include <stdexcept>

#include "analyzer_scratch.h"

namespace cotsieve {

const StepList& scratch_steps(const AnalyzeScratch& s) { return s.steps; }

Analyzer::Analyzer(const Scanner& markers, int n_categories, int branch_category, int hesitate_category,
                   StepMode mode)
    : markers_(markers),
      n_categories_(n_categories),
      branch_category_(branch_category),
      hesitate_category_(hesitate_category),
      mode_(mode) {
  if (n_categories_ < 1 || n_categories_ > 32) throw std::invalid_argument("between 1 and 32 categories are supported");
  if (branch_category_ < 0 || branch_category_ >= n_categories_)
    throw std::invalid_argument("branch category out of range");
  if (hesitate_category_ < 0 || hesitate_category_ >= n_categories_)
    throw std::invalid_argument("hesitate category out of range");
  category_of_.reserve(markers_.pattern_count());
  for (size_t i = 0; i < markers_.pattern_count(); ++i) {
    const int32_t c = markers_.pattern(i).category;
    if (c < 0 || c >= n_categories_) throw std::invalid_argument("pattern category out of range");
    category_of_.push_back(c);
  }
}

Analyzer::~Analyzer() = default;

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
