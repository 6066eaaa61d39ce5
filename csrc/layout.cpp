#include "layout.h"

#include "bytes.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define COTSIEVE_HAVE_AVX512_LAYOUT 1
#include <immintrin.h>
#endif

namespace cotsieve {
namespace {

// Folded "answ", of "answer": where an answer phrase may start.
bool answ_at(const uint8_t* t, uint64_t n, uint64_t i) {
  return i + 4 <= n && kBytes.fold[t[i]] == 'a' && kBytes.fold[t[i + 1]] == 'n' && kBytes.fold[t[i + 2]] == 's' &&
         kBytes.fold[t[i + 3]] == 'w';
}

// "\bo" or "\fb": where \boxed{ and \fbox{ may start. Three bytes, not two:
// LaTeX-heavy traces hold dozens of "\frac" and "\begin" per kilobyte, and
// each hint costs the answer parser a look.
bool box_at(const uint8_t* t, uint64_t n, uint64_t i) {
  return t[i] == '\\' && i + 2 < n && ((t[i + 1] == 'b' && t[i + 2] == 'o') || (t[i + 1] == 'f' && t[i + 2] == 'b'));
}

bool sentence_end_after(const uint8_t* t, uint64_t n, uint64_t i) {
  return (t[i] == '.' || t[i] == '!' || t[i] == '?') && (i + 1 == n || kBytes.whitespace[t[i + 1]]);
}

void scalar_layout(const uint8_t* t, uint64_t n, uint64_t from, bool prev_space, Layout& out) {
  for (uint64_t i = from; i < n; ++i) {
    const uint8_t c = t[i];
    const bool space = kBytes.whitespace[c];
    if (!space && prev_space) ++out.words;
    prev_space = space;
    if (c == '\n') out.newlines.push_back(i);
    if (sentence_end_after(t, n, i)) out.sentence_ends.push_back(i + 1);
    if (box_at(t, n, i) || answ_at(t, n, i)) out.answer_hints.push_back(i);
  }
}

#ifdef COTSIEVE_HAVE_AVX512_LAYOUT

// Blocks per batch. Each list gets room for a whole batch before it, so the
// vector loop never calls out (a call would spill every constant register),
// and a list keeps at most a batch's worth of spare slots.
constexpr uint64_t kBatchBlocks = 64;
constexpr size_t kBatchSlots = 64 * kBatchBlocks;

// Stores base + the index of each set bit at `to`, and returns the new end.
// (Writing a fixed four slots per block to avoid this loop's mispredicts was
// measured slower.)
inline uint64_t* put_bits(uint64_t mask, uint64_t base, uint64_t* to) {
  for (; mask != 0; mask &= mask - 1) *to++ = base + static_cast<uint64_t>(__builtin_ctzll(mask));
  return to;
}

bool avx512_available() { return __builtin_cpu_supports("avx512bw"); }

#define COTSIEVE_AVX512 __attribute__((target("avx512f,avx512bw")))

COTSIEVE_AVX512 inline __mmask64 eq(__m512i v, char c) { return _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c)); }

COTSIEVE_AVX512 inline __mmask64 spaces(__m512i v) { return eq(v, ' ') | eq(v, '\n') | eq(v, '\t') | eq(v, '\r'); }

// OR-ing 0x20 folds exactly the letters compared here, as the scalar path's table does.
COTSIEVE_AVX512 inline __mmask64 folded_eq(__m512i v, char lower) {
  return _mm512_cmpeq_epi8_mask(_mm512_or_si512(v, _mm512_set1_epi8(0x20)), _mm512_set1_epi8(lower));
}

struct Cursors {
  uint64_t *lfs, *ends, *hints;
};

// Up to kBatchBlocks full 64-byte blocks from `i` (three bytes past a block
// are read for lookahead); returns where it stopped.
COTSIEVE_AVX512 uint64_t avx512_batch(const uint8_t* t, uint64_t n, uint64_t i, Cursors& to, uint64_t& words,
                                      bool& prev_space) {
  uint64_t after_space = prev_space ? 1 : 0, found_words = 0;
  for (uint64_t k = 0; k < kBatchBlocks && i + 64 + 3 <= n; ++k, i += 64) {
    const __m512i v0 = _mm512_loadu_si512(t + i), v1 = _mm512_loadu_si512(t + i + 1),
                  v2 = _mm512_loadu_si512(t + i + 2), v3 = _mm512_loadu_si512(t + i + 3);
    const __mmask64 space = spaces(v0);
    found_words += static_cast<uint64_t>(__builtin_popcountll(~space & ((space << 1) | after_space)));
    after_space = space >> 63;
    to.lfs = put_bits(eq(v0, '\n'), i, to.lfs);
    to.ends = put_bits((eq(v0, '.') | eq(v0, '!') | eq(v0, '?')) & spaces(v1), i + 1, to.ends);
    const __mmask64 box = eq(v0, '\\') & ((eq(v1, 'b') & eq(v2, 'o')) | (eq(v1, 'f') & eq(v2, 'b')));
    const __mmask64 answ = folded_eq(v0, 'a') & folded_eq(v1, 'n') & folded_eq(v2, 's') & folded_eq(v3, 'w');
    to.hints = put_bits(box | answ, i, to.hints);
  }
  words += found_words;
  prev_space = after_space != 0;
  return i;
}

// Full blocks only; the caller finishes the tail with the scalar loop.
uint64_t avx512_layout(const uint8_t* t, uint64_t n, Layout& out, bool& prev_space) {
  uint64_t i = 0;
  while (i + 64 + 3 <= n) {
    Cursors to{out.newlines.reserve_more(kBatchSlots), out.sentence_ends.reserve_more(kBatchSlots),
               out.answer_hints.reserve_more(kBatchSlots)};
    i = avx512_batch(t, n, i, to, out.words, prev_space);
    out.newlines.grow_to(to.lfs);
    out.sentence_ends.grow_to(to.ends);
    out.answer_hints.grow_to(to.hints);
  }
  return i;
}

#else

bool avx512_available() { return false; }
uint64_t avx512_layout(const uint8_t*, uint64_t, Layout&, bool&) { return 0; }

#endif

}  // namespace

void compute_layout(const uint8_t* t, uint64_t n, Layout& out) {
  out.newlines.clear();
  out.sentence_ends.clear();
  out.answer_hints.clear();
  out.words = 0;
  static const bool vector = avx512_available();
  bool prev_space = true;
  uint64_t done = vector ? avx512_layout(t, n, out, prev_space) : 0;
  scalar_layout(t, n, done, prev_space, out);
}

}  // namespace cotsieve
