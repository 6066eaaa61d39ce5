// The AVX2 prefilter kernel: the AVX-512 kernel's table lookups (vpermi2b,
// 128 entries of the folded byte) become two 16-entry byte shuffles, one per
// nibble of the raw byte (NibbleTables). This file is compiled with -mavx2; nothing in it may
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

__m256i word_bytes(__m256i v) {
  const __m256i folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));  // only letters need to land in a-z
  return _mm256_or_si256(_mm256_or_si256(in_range(folded, 'a', 26), in_range(v, '0', 10)),
                         _mm256_cmpeq_epi8(v, _mm256_set1_epi8('_')));
}

// `Halves` is 1 when the set has at most 8 buckets: half the lookups, and
// the high bucket bytes are neither computed nor stored. `WordStart`: some
// bucket is cleared after a word byte. `Lean` (one bucket half, one pattern
// per bucket, NibbleTables::ascii_only, no word-start test): the raw byte is
// the low nibble's index, and past the first byte only the low nibble is
// looked up. With one pattern per bucket the first byte and three low
// nibbles pass few more positions than four bytes (on the real traces,
// 0.61 against 0.47 per KB for oat-zero, 2.40 against 2.38 for
// paper-2604.01702), for a tenth less time. Compile-time, so that every
// table stays in a register.
template <int Halves, bool Lean, bool WordStart>
struct Tables {
  __m256i low[Halves][kPrefilterPositions], high[Halves][kPrefilterPositions], keep[Halves];

  explicit Tables(const NibbleTables& t) {
    for (int h = 0; h < Halves; ++h) {
      for (int j = 0; j < kPrefilterPositions; ++j) {
        low[h][j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t.low[h][j]));
        high[h][j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t.high[h][j]));
      }
      keep[h] = _mm256_set1_epi8(static_cast<char>(~t.word_start[h]));
    }
  }

  // The buckets of each bucket half that may start at the 32 bytes after
  // `src[0]`; returns the mask of bytes with any.
  uint32_t half_window(const uint8_t* src, uint8_t* low_out, uint8_t* high_out) const {
    __m256i acc[Halves];
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    for (int j = 0; j < kPrefilterPositions; ++j) {
      // A shuffle gives zero for an index byte with its top bit set, so the
      // raw byte works as the low nibble's index where no bucket takes bytes
      // >= 0x80; else they are clamped to 0x7f first.
      const __m256i raw = load(src + 1 + j);
      const __m256i bytes = Lean ? raw : _mm256_min_epu8(raw, _mm256_set1_epi8(0x7f));
      const __m256i lo_nibble = Lean ? bytes : _mm256_and_si256(bytes, nibble);
      for (int h = 0; h < Halves; ++h) {
        __m256i both = _mm256_shuffle_epi8(low[h][j], lo_nibble);
        if (!Lean || j == 0) {
          const __m256i hi_nibble = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble);
          both = _mm256_and_si256(both, _mm256_shuffle_epi8(high[h][j], hi_nibble));
        }
        acc[h] = j == 0 ? both : _mm256_and_si256(acc[h], both);
      }
    }
    if (WordStart) {
      const __m256i after_word = word_bytes(load(src));
      for (int h = 0; h < Halves; ++h)
        acc[h] = _mm256_and_si256(acc[h], _mm256_blendv_epi8(_mm256_set1_epi8(-1), keep[h], after_word));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(low_out), acc[0]);
    __m256i any = acc[0];
    if (Halves == 2) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(high_out), acc[Halves - 1]);
      any = _mm256_or_si256(any, acc[Halves - 1]);
    }
    return ~static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(any, _mm256_setzero_si256())));
  }
};

template <int Halves, bool Lean, bool WordStart>
void windows(const NibbleTables& tables, const uint8_t* text, uint64_t n, uint64_t pos, size_t count, uint64_t* masks,
             uint8_t* low, uint8_t* high) {
  const Tables<Halves, Lean, WordStart> t(tables);  // loaded once for the whole run of windows
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

}  // namespace

void prefilter_windows_avx2(const NibbleTables& tables, const uint8_t* text, uint64_t n, uint64_t pos, size_t count,
                            uint64_t* masks, uint8_t* low, uint8_t* high) {
  using Kernel = void (*)(const NibbleTables&, const uint8_t*, uint64_t, uint64_t, size_t, uint64_t*, uint8_t*,
                          uint8_t*);
  static constexpr Kernel kernels[2][2] = {  // [two halves][word start]
      {windows<1, false, false>, windows<1, false, true>},
      {windows<2, false, false>, windows<2, false, true>}};
  const bool word_start = (tables.word_start[0] | tables.word_start[1]) != 0;
  const bool lean = !tables.two_halves && tables.one_per_bucket && tables.ascii_only && !word_start;
  const Kernel kernel = lean ? windows<1, true, false> : kernels[tables.two_halves][word_start];
  kernel(tables, text, n, pos, count, masks, low, high);
}

}  // namespace cotsieve
#endif
