// The AVX2 prefilter kernel: the AVX-512 kernel's table lookups (vpermi2b,
// 128 entries) become two 16-entry byte shuffles, one per nibble of the
// index (NibbleTables). This file is compiled with -mavx2; nothing in it may
// run before simd_level() says so.
#include "prefilter_windows.h"

#ifdef __AVX2__
#include <immintrin.h>

namespace cotsieve {
namespace {

__m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Bytes in [lo, lo + span): an unsigned compare, as min(x, span - 1) == x.
__m256i in_range(__m256i v, char lo, char span) {
  const __m256i x = _mm256_sub_epi8(v, _mm256_set1_epi8(lo));
  return _mm256_cmpeq_epi8(_mm256_min_epu8(x, _mm256_set1_epi8(static_cast<char>(span - 1))), x);
}

__m256i fold_upper(__m256i v) {
  return _mm256_add_epi8(v, _mm256_and_si256(in_range(v, 'A', 26), _mm256_set1_epi8(0x20)));
}

__m256i word_bytes(__m256i v) {
  return _mm256_or_si256(_mm256_or_si256(in_range(fold_upper(v), 'a', 26), in_range(v, '0', 10)),
                         _mm256_cmpeq_epi8(v, _mm256_set1_epi8('_')));
}

struct Tables {
  __m256i low[2][kPrefilterPositions], high[2][kPrefilterPositions], keep[2];

  Tables(const NibbleTables& t, const uint8_t needs_word_start[2]) {
    for (int h = 0; h < 2; ++h) {
      for (int j = 0; j < kPrefilterPositions; ++j) {
        low[h][j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t.low[h][j]));
        high[h][j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t.high[h][j]));
      }
      keep[h] = _mm256_set1_epi8(static_cast<char>(~needs_word_start[h]));
    }
  }

  // The buckets of each bucket half that may start at the 32 bytes after
  // `src[0]`; returns the mask of bytes with any.
  uint32_t half_window(const uint8_t* src, uint8_t* low_out, uint8_t* high_out) const {
    __m256i acc[2] = {_mm256_set1_epi8(-1), _mm256_set1_epi8(-1)};
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    for (int j = 0; j < kPrefilterPositions; ++j) {
      // Same indexing as index_of(): fold, then clamp bytes >= 0x80 to 0x7f.
      const __m256i idx = _mm256_min_epu8(fold_upper(load(src + 1 + j)), _mm256_set1_epi8(0x7f));
      const __m256i lo_nibble = _mm256_and_si256(idx, nibble);
      const __m256i hi_nibble = _mm256_and_si256(_mm256_srli_epi16(idx, 4), nibble);
      for (int h = 0; h < 2; ++h)
        acc[h] = _mm256_and_si256(acc[h], _mm256_and_si256(_mm256_shuffle_epi8(low[h][j], lo_nibble),
                                                           _mm256_shuffle_epi8(high[h][j], hi_nibble)));
    }
    const __m256i after_word = word_bytes(load(src));
    for (int h = 0; h < 2; ++h)
      acc[h] = _mm256_and_si256(acc[h], _mm256_blendv_epi8(_mm256_set1_epi8(-1), keep[h], after_word));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(low_out), acc[0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(high_out), acc[1]);
    const __m256i none = _mm256_cmpeq_epi8(_mm256_or_si256(acc[0], acc[1]), _mm256_setzero_si256());
    return ~static_cast<uint32_t>(_mm256_movemask_epi8(none));
  }
};

}  // namespace

void prefilter_windows_avx2(const NibbleTables& tables, const uint8_t needs_word_start[2], const uint8_t* text,
                            uint64_t n, uint64_t pos, size_t count, uint64_t* masks, uint8_t* low, uint8_t* high) {
  const Tables t(tables, needs_word_start);  // loaded once for the whole run of windows
  alignas(64) uint8_t padded[kPrefilterSpan + 64];
  for (size_t w = 0; w < count; ++w, pos += kPrefilterWindow) {
    const uint8_t* src = window_source(text, n, pos, padded);
    uint8_t* lo = low + w * kPrefilterWindow;
    uint8_t* hi = high + w * kPrefilterWindow;
    const uint64_t first = t.half_window(src, lo, hi);
    const uint64_t second = t.half_window(src + 32, lo + 32, hi + 32);
    masks[w] = inside_text(first | second << 32, n, pos);
  }
}

}  // namespace cotsieve
#endif
