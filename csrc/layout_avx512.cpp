// The AVX-512 layout classifier: 64 bytes per compare. This file is compiled
// with -mavx512bw -mavx512vbmi2; nothing in it may run before simd_level()
// and the CPU's VBMI2 flag say so (layout.cpp).
#include "layout_blocks.h"

#if defined(__AVX512BW__) && defined(__AVX512VBMI2__)
#include <immintrin.h>

namespace cotsieve {
namespace {

struct Avx512Classifier {
  __m512i notable_table = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(kNotableByNibble)));

  static __mmask64 eq(__m512i v, char c) { return _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c)); }
  __mmask64 notable(__m512i v) const { return _mm512_cmpeq_epi8_mask(_mm512_shuffle_epi8(notable_table, v), v); }
  static __mmask64 below_bang(__mmask64 among, __m512i v) {
    return _mm512_mask_cmplt_epu8_mask(among, v, _mm512_set1_epi8('!'));
  }
  // OR-ing 0x20 folds exactly the letters compared here, as the scalar path's table does.
  static __mmask64 folded_eq(__m512i v, char lower) {
    return _mm512_cmpeq_epi8_mask(_mm512_or_si512(v, _mm512_set1_epi8(0x20)), _mm512_set1_epi8(lower));
  }

  // The offsets of a mask's bits: one byte compress gives the bit indices
  // in order, and the first eight go out in one store, whatever their
  // count, so no branch depends on how many there are (a bit loop
  // mispredicted about once a block). The rare ninth bit and after take
  // the bit loop.
  static uint64_t* put(uint64_t mask, uint64_t base, uint64_t* to) {
    const __m512i indices = _mm512_maskz_compress_epi8(mask, _mm512_set_epi8(
        63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36,
        35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7,
        6, 5, 4, 3, 2, 1, 0));
    const __m512i first_eight = _mm512_cvtepu8_epi64(_mm512_castsi512_si128(indices));
    _mm512_storeu_si512(to, _mm512_add_epi64(first_eight, _mm512_set1_epi64(static_cast<long long>(base))));
    const uint64_t count = static_cast<uint64_t>(__builtin_popcountll(mask));
    if (__builtin_expect(count > 8, 0)) {
      for (int k = 0; k < 8; ++k) mask &= mask - 1;
      put_bits(mask, base, to + 8);
    }
    return to + count;
  }

  BlockMasks operator()(const uint8_t* p) const {
    const __m512i v0 = _mm512_loadu_si512(p), v1 = _mm512_loadu_si512(p + 1), v2 = _mm512_loadu_si512(p + 2),
                  v3 = _mm512_loadu_si512(p + 3);
    const __mmask64 notable0 = notable(v0), space0 = below_bang(notable0, v0);
    const __mmask64 space1 = below_bang(notable(v1), v1);
    const __mmask64 box = eq(v0, '\\') & ((eq(v1, 'b') & eq(v2, 'o')) | (eq(v1, 'f') & eq(v2, 'b')));
    const __mmask64 answ = folded_eq(v0, 'a') & folded_eq(v1, 'n') & folded_eq(v2, 's') & folded_eq(v3, 'w');
    return {space0, eq(v0, '\n'), notable0 & ~space0 & space1, box | answ};
  }
};

}  // namespace

uint64_t layout_batch_avx512(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to) {
  return layout_batch(t, n, i, to, Avx512Classifier{});
}

}  // namespace cotsieve
#endif
