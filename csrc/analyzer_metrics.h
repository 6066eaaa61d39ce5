// The metric columns of `analyze` (docs/metrics.md). kMetricFields is the
// one list of them: the writer fills it, the bindings allocate and export it,
// and Python names its table's columns after it. A new metric is an entry
// here and the line in Analyzer::write_metrics that computes it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cotsieve {

// How many columns a metric has: one, one per category, or one per pair of
// labels (the categories, then "progress").
enum class MetricShape : uint8_t { kPerText = 0, kPerCategory = 1, kPerLabelPair = 2 };
// A float64 NaN is a null: a ratio with a zero denominator.
enum class MetricType : uint8_t { kInt64 = 0, kFloat64 = 1 };

// In table column order.
enum Metric : size_t {
  kNBytes,
  kNWords,
  kNSteps,
  kCount,
  kSteps,
  kBranchStepRatio,
  kMarkersPer1kWords,
  kTransitions,
  kLongestBranchRun,
  kRepetition,
  kFirstAnswerOffset,
  kNDistinctAnswers,
  kTailAfterFirstAnswer,
  kMetricCount
};

// A per-category column is named `name`_category, a per-pair one
// `name`_from_to.
struct MetricField {
  const char* name;
  MetricShape shape;
  MetricType type;
};

inline constexpr MetricField kMetricFields[kMetricCount] = {
    {"n_bytes", MetricShape::kPerText, MetricType::kInt64},
    {"n_words", MetricShape::kPerText, MetricType::kInt64},
    {"n_steps", MetricShape::kPerText, MetricType::kInt64},
    {"count", MetricShape::kPerCategory, MetricType::kInt64},
    {"steps", MetricShape::kPerCategory, MetricType::kInt64},
    {"branch_step_ratio", MetricShape::kPerText, MetricType::kFloat64},
    {"markers_per_1k_words", MetricShape::kPerText, MetricType::kFloat64},
    {"p", MetricShape::kPerLabelPair, MetricType::kFloat64},
    {"longest_branch_run", MetricShape::kPerText, MetricType::kInt64},
    {"repetition", MetricShape::kPerText, MetricType::kFloat64},
    {"first_answer_offset", MetricShape::kPerText, MetricType::kInt64},
    {"n_distinct_answers", MetricShape::kPerText, MetricType::kInt64},
    {"tail_after_first_answer", MetricShape::kPerText, MetricType::kFloat64},
};

// Columns of a metric of `shape` for `n_categories` categories.
inline size_t metric_width(MetricShape shape, size_t n_categories) {
  switch (shape) {
    case MetricShape::kPerCategory: return n_categories;
    case MetricShape::kPerLabelPair: return (n_categories + 1) * (n_categories + 1);
    case MetricShape::kPerText: break;
  }
  return 1;
}

// The output: for each metric, its columns one after another, `rows` values
// each (column-major, so that each column is contiguous for Arrow). The pair
// (a, b) is column a * (C + 1) + b. The caller owns the memory; row i is
// written only by the thread that analyses text i.
struct MetricColumns {
  void* data[kMetricCount];
  size_t rows;

  // Column `column` of metric `m`, whose type must be int64 / float64.
  int64_t* i64(Metric m, size_t column = 0) const { return static_cast<int64_t*>(data[m]) + column * rows; }
  double* f64(Metric m, size_t column = 0) const { return static_cast<double*>(data[m]) + column * rows; }
};

}  // namespace cotsieve
