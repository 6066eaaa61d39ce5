// The AVX-512 layout classifier: 64 bytes per compare. This file is compiled
// with -mavx512bw; nothing in it may run before simd_level() says so.
#include "layout_blocks.h"

#ifdef __AVX512BW__
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
