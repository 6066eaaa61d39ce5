// One vector pass over a text that finds what steps, words and answers need:
// LFs, sentence ends, word starts, and the few places an answer may begin.
#pragma once

#include <cstdint>
#include <vector>

namespace cotsieve {

struct Layout {
  std::vector<uint64_t> newlines;       // offsets of LF
  std::vector<uint64_t> sentence_ends;  // offset just past a . ! ? followed by whitespace or the end
  std::vector<uint64_t> answer_hints;   // offsets of "\\bo", "\\fb" and case-folded "answ"
  uint64_t words = 0;                   // maximal runs of non-whitespace bytes
};

void compute_layout(const uint8_t* text, uint64_t n, Layout& out);

}  // namespace cotsieve
