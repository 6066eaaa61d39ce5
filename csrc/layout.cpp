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

void push_bits(uint64_t mask, uint64_t base, std::vector<uint64_t>& out) {
  for (; mask != 0; mask &= mask - 1) out.push_back(base + static_cast<uint64_t>(__builtin_ctzll(mask)));
}

#ifdef COTSIEVE_HAVE_AVX512_LAYOUT

bool avx512_available() { return __builtin_cpu_supports("avx512bw"); }

__attribute__((target("avx512f,avx512bw"))) __mmask64 spaces(__m512i v) {
  return _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(' ')) | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n')) |
         _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\t')) | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
}

__attribute__((target("avx512f,avx512bw"))) __mmask64 folded_equal(__m512i v, char lower) {
  return _mm512_cmpeq_epi8_mask(_mm512_or_si512(v, _mm512_set1_epi8(0x20)), _mm512_set1_epi8(lower));
}

// Full 64-byte blocks only (the next block's first bytes are read for
// lookahead); the caller finishes the tail with the scalar loop.
__attribute__((target("avx512f,avx512bw"))) uint64_t avx512_layout(const uint8_t* t, uint64_t n, Layout& out,
                                                                     bool& prev_space) {
  uint64_t i = 0;
  for (; i + 64 + 3 <= n; i += 64) {
    const __m512i v0 = _mm512_loadu_si512(t + i), v1 = _mm512_loadu_si512(t + i + 1),
                  v2 = _mm512_loadu_si512(t + i + 2), v3 = _mm512_loadu_si512(t + i + 3);
    const __mmask64 space = spaces(v0);
    const __mmask64 starts = ~space & ((space << 1) | (prev_space ? 1u : 0u));
    out.words += static_cast<uint64_t>(__builtin_popcountll(starts));
    prev_space = space >> 63;
    const __mmask64 term = _mm512_cmpeq_epi8_mask(v0, _mm512_set1_epi8('.')) |
                           _mm512_cmpeq_epi8_mask(v0, _mm512_set1_epi8('!')) |
                           _mm512_cmpeq_epi8_mask(v0, _mm512_set1_epi8('?'));
    // "answ" under ASCII case folding: for these letters OR-ing 0x20 folds
    // exactly, as the scalar path's table does.
    const __mmask64 answ = folded_equal(v0, 'a') & folded_equal(v1, 'n') & folded_equal(v2, 's') & folded_equal(v3, 'w');
    push_bits(_mm512_cmpeq_epi8_mask(v0, _mm512_set1_epi8('\n')), i, out.newlines);
    push_bits(term & spaces(v1), i + 1, out.sentence_ends);
    const __mmask64 box = _mm512_cmpeq_epi8_mask(v0, _mm512_set1_epi8('\\')) &
                          ((_mm512_cmpeq_epi8_mask(v1, _mm512_set1_epi8('b')) & _mm512_cmpeq_epi8_mask(v2, _mm512_set1_epi8('o'))) |
                           (_mm512_cmpeq_epi8_mask(v1, _mm512_set1_epi8('f')) & _mm512_cmpeq_epi8_mask(v2, _mm512_set1_epi8('b'))));
    push_bits(box | answ, i, out.answer_hints);
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
