#include "prefilter.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "bytes.h"
#include "cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define COTSIEVE_HAVE_VBMI_KERNEL 1
#include <immintrin.h>
#endif

namespace cotsieve {
namespace {

bool needs_word_start(const PatternSpec& p) {
  return p.boundary_start && kBytes.word[static_cast<uint8_t>(p.bytes[0])];
}

// The table index of a byte: ASCII case-folded, and every byte >= 0x80
// shares index 0x7f (with DEL), so non-ASCII bytes never pose as letters.
uint8_t index_of(uint8_t b) { return b >= 0x80 ? 0x7f : kBytes.fold[b]; }

std::string folded_prefix(const PatternSpec& p, size_t n) {
  std::string s;
  for (size_t i = 0; i < std::min(n, p.bytes.size()); ++i) s.push_back(static_cast<char>(kBytes.fold[static_cast<uint8_t>(p.bytes[i])]));
  return s;
}

enum class Kernel { kVbmi, kAvx2, kNone };

// The fastest kernel that this CPU and the COTSIEVE_SIMD cap allow, decided
// once: available() and window_masks() both ask this.
Kernel chosen_kernel() {
  static const Kernel kernel = [] {
#ifdef COTSIEVE_HAVE_VBMI_KERNEL
    if (simd_level() == SimdLevel::kAvx512 && __builtin_cpu_supports("avx512vbmi")) return Kernel::kVbmi;
#endif
#ifdef COTSIEVE_X86_KERNELS
    if (simd_level() != SimdLevel::kNone) return Kernel::kAvx2;
#endif
    return Kernel::kNone;
  }();
  return kernel;
}

}  // namespace

bool Prefilter::available() { return chosen_kernel() != Kernel::kNone; }

Prefilter::Prefilter(const std::vector<PatternSpec>& patterns) {
  std::memset(table_, 0, sizeof(table_));
  // Neighbours in this order share prefixes and boundary needs, so a bucket
  // of them accepts few bytes it would not accept anyway.
  std::vector<size_t> order(patterns.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto &pa = patterns[a], &pb = patterns[b];
    bool sa = pa.bytes.size() < kPositions, sb = pb.bytes.size() < kPositions;
    if (needs_word_start(pa) != needs_word_start(pb)) return needs_word_start(pa);
    if (sa != sb) return sb;
    return folded_prefix(pa, kPositions) < folded_prefix(pb, kPositions);
  });
  // Up to kOneHalfMaxPatterns patterns share 8 buckets, one bucket byte: the
  // AVX2 kernel then does half the lookups. On the real traces reasonscore
  // (10 patterns) passed 0.2% more positions in 8 buckets than in 10 and
  // scanned a fifth faster; nowait (17) passed twice as many and was slower.
  constexpr size_t kOneHalfMaxPatterns = 12;
  n_buckets_ = std::min<size_t>(patterns.size() <= kOneHalfMaxPatterns ? 8 : 16, std::max<size_t>(1, patterns.size()));
  const size_t n_buckets = n_buckets_;
  patterns_count_ = patterns.size();
  bool all_need_word_start[16];
  std::fill(all_need_word_start, all_need_word_start + 16, true);
  bool short_word_start = false;  // a pattern that needs a word start and is shorter than the filter's window
  for (size_t rank = 0; rank < order.size(); ++rank) {
    const PatternSpec& p = patterns[order[rank]];
    const size_t bucket = rank * n_buckets / order.size();
    const int half = static_cast<int>(bucket / 8);
    const uint8_t bit = static_cast<uint8_t>(1u << (bucket % 8));
    all_need_word_start[bucket] &= needs_word_start(p);
    short_word_start |= needs_word_start(p) && p.bytes.size() < kPositions;
    buckets_[bucket].push_back(static_cast<int32_t>(order[rank]));
    const size_t len = p.bytes.size();
    const bool needs_word_end = p.boundary_end && kBytes.word[static_cast<uint8_t>(p.bytes.back())];
    for (size_t j = 0; j < kPositions; ++j) {
      uint8_t* entries = table_[half][j];
      if (j < len) {
        entries[index_of(static_cast<uint8_t>(p.bytes[j]))] |= bit;
      } else if (j == len && needs_word_end) {
        // A short pattern with a word boundary after it: the next byte must
        // not be a word byte, which keeps "or" from passing in "order".
        for (int b = 0; b < 256; ++b)
          if (!kBytes.word[b]) entries[index_of(static_cast<uint8_t>(b))] |= bit;
      } else {
        for (int i = 0; i < 128; ++i) entries[i] |= bit;  // past the end: any byte
      }
    }
  }
  for (size_t b = 0; b < n_buckets; ++b) {
    if (all_need_word_start[b]) needs_word_start_[b / 8] |= static_cast<uint8_t>(1u << (b % 8));
    std::sort(buckets_[b].begin(), buckets_[b].end(), [&](int32_t x, int32_t y) {
      size_t lx = patterns[x].bytes.size(), ly = patterns[y].bytes.size();
      return lx != ly ? lx > ly : x < y;
    });
  }
  // The word-start test costs the AVX2 kernel about a third of its time.
  // With eight buckets (at most 12 patterns) and every pattern that needs a
  // word start at least kPositions long, the four bytes already pass almost
  // only real starts (on the real traces, 7 more candidates in 152,000 for
  // paper-2604.01702), so the exact check alone, which tests the word start
  // too, does it. Skipping it only lets more positions through to that check.
  build_nibble_tables(two_halves() || short_word_start);
}

void Prefilter::build_nibble_tables(bool word_start) {
  std::memset(&nibbles_, 0, sizeof(nibbles_));
  if (word_start) std::memcpy(nibbles_.word_start, needs_word_start_, sizeof nibbles_.word_start);
  nibbles_.two_halves = two_halves();
  nibbles_.one_per_bucket = n_buckets_ == patterns_count_;
  nibbles_.ascii_only = true;
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < kPositions; ++j) {
      nibbles_.ascii_only &= table_[h][j][0x7f] == 0;
      for (int b = 0; b < 128; ++b) {  // bytes >= 0x80 share index 0x7f, DEL's
        const uint8_t buckets = table_[h][j][index_of(static_cast<uint8_t>(b))];
        for (int lane = 0; lane < 32; lane += 16) {
          nibbles_.low[h][j][lane + (b & 15)] |= buckets;
          nibbles_.high[h][j][lane + (b >> 4)] |= buckets;
        }
      }
    }
  }
}

void Prefilter::window_masks(const uint8_t* text, uint64_t n, uint64_t pos, size_t count, uint64_t* masks,
                             uint8_t* low, uint8_t* high) const {
  switch (chosen_kernel()) {
#ifdef COTSIEVE_HAVE_VBMI_KERNEL
    case Kernel::kVbmi: return window_masks_vbmi(text, n, pos, count, masks, low, high);
#endif
#ifdef COTSIEVE_X86_KERNELS
    case Kernel::kAvx2:
      return prefilter_windows_avx2(nibbles_, text, n, pos, count, masks, low, high);
#endif
    default: break;
  }
  // Reached only without a vector path, where available() is false and no
  // scanner builds a prefilter: accept every position and bucket, to stay exact.
  (void)text;
  std::memset(low, 0xff, count * kWindow);
  std::memset(high, 0xff, count * kWindow);
  for (size_t w = 0; w < count; ++w, pos += kWindow) masks[w] = inside_text(~uint64_t(0), n, pos);
}

#ifdef COTSIEVE_HAVE_VBMI_KERNEL

namespace {

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) inline __m512i fold_upper(__m512i v) {
  __mmask64 upper = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8('A')), _mm512_set1_epi8(26));
  return _mm512_mask_add_epi8(v, upper, v, _mm512_set1_epi8(0x20));
}

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) inline __mmask64 word_bytes(__m512i v) {
  __m512i f = fold_upper(v);
  __mmask64 letter = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(f, _mm512_set1_epi8('a')), _mm512_set1_epi8(26));
  __mmask64 digit = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8('0')), _mm512_set1_epi8(10));
  return letter | digit | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('_'));
}

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void Prefilter::window_masks_vbmi(
    const uint8_t* text, uint64_t n, uint64_t pos, size_t count, uint64_t* masks, uint8_t* low,
    uint8_t* high) const {
  // Tables and masks are loaded once for the whole run of windows.
  __m512i lo[2][kPositions], hi[2][kPositions], keep[2];
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < kPositions; ++j) {
      lo[h][j] = _mm512_load_si512(table_[h][j]);
      hi[h][j] = _mm512_load_si512(table_[h][j] + 64);
    }
    keep[h] = _mm512_set1_epi8(static_cast<char>(~needs_word_start_[h]));
  }
  alignas(64) uint8_t padded[kPrefilterSpan + 64];
  for (size_t w = 0; w < count; ++w, pos += kWindow) {
    const uint8_t* src = window_source(text, n, pos, padded);
    __m512i acc0 = _mm512_set1_epi8(-1), acc1 = acc0;
    for (int j = 0; j < kPositions; ++j) {
      // Same indexing as index_of(): fold, then clamp bytes >= 0x80 to 0x7f.
    __m512i idx = _mm512_min_epu8(fold_upper(_mm512_loadu_si512(src + 1 + j)), _mm512_set1_epi8(0x7f));
      acc0 = _mm512_and_si512(acc0, _mm512_permutex2var_epi8(lo[0][j], idx, hi[0][j]));
      acc1 = _mm512_and_si512(acc1, _mm512_permutex2var_epi8(lo[1][j], idx, hi[1][j]));
    }
    __mmask64 after_word = word_bytes(_mm512_loadu_si512(src));
    acc0 = _mm512_mask_and_epi32(acc0, 0xffff, acc0, _mm512_mask_blend_epi8(after_word, _mm512_set1_epi8(-1), keep[0]));
    acc1 = _mm512_mask_and_epi32(acc1, 0xffff, acc1, _mm512_mask_blend_epi8(after_word, _mm512_set1_epi8(-1), keep[1]));
    _mm512_storeu_si512(low + w * kWindow, acc0);
    _mm512_storeu_si512(high + w * kWindow, acc1);
    __m512i any = _mm512_or_si512(acc0, acc1);
    masks[w] = inside_text(_mm512_test_epi8_mask(any, any), n, pos);
  }
}

#endif

}  // namespace cotsieve
