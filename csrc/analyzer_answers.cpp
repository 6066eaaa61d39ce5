#include "analyzer_answers.h"

#include "analyzer_steps.h"
#include "bytes.h"
#include "hash.h"

namespace cotsieve {

namespace {

// Where the content of a box that opens at `at` starts, or 0 if none opens
// there (a box's content never starts at 0).
inline uint64_t box_content_at(const uint8_t* t, uint64_t n, uint64_t at) {
  for (const char* opener : kBoxOpeners)
    if (opener_at(t, n, at, opener)) return at + std::strlen(opener);
  return 0;
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

AnswerInfo AnswerFinder::find(const TextRef& text, const Offsets& hints) {
  const uint8_t* t = text.data;
  const uint64_t n = text.size;
  AnswerInfo info;
  hashes_.clear();
  boxes_.reset(t, n);
  uint64_t covered = 0;  // answers do not overlap: a phrase's value may hold another hint
  for (uint64_t at : hints) {
    if (at < covered) continue;
    Span value, whole;
    if (const uint64_t open = box_content_at(t, n, at)) {
      uint64_t close;
      if (!boxes_.close_of(open, close)) continue;
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
    hashes_.push_back(normalized_hash(t, value, bytes_));
    covered = whole.end;
  }
  std::sort(hashes_.begin(), hashes_.end());
  info.distinct = std::unique(hashes_.begin(), hashes_.end()) - hashes_.begin();
  return info;
}

}  // namespace cotsieve
