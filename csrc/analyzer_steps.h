// Steps (docs/metrics.md): spans of a text cut at paragraphs, lines,
// sentences or markers, then flagged and labelled by the matches in them.
#pragma once

#include <cstdint>

#include "bytes.h"

namespace cotsieve {

struct Span {
  uint64_t start, end;
};

// Trims whitespace off both ends; an all-whitespace span becomes empty.
inline Span trim(const uint8_t* t, Span s) {
  while (s.start < s.end && kBytes.whitespace[t[s.start]]) ++s.start;
  while (s.end > s.start && kBytes.whitespace[t[s.end - 1]]) --s.end;
  return s;
}

}  // namespace cotsieve
