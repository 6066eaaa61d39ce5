// Everything one analyzer worker reuses from text to text.
#pragma once

#include <cstdint>
#include <vector>

#include "analyzer.h"
#include "analyzer_answers.h"
#include "analyzer_repetition.h"
#include "layout.h"

namespace cotsieve {

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
  AnswerFinder answers;
  RepeatFinder repeats;
};

}  // namespace cotsieve
