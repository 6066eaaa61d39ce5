#include "layout.h"

#include <cstring>

#include "bytes.h"
#include "cpu.h"
#include "layout_blocks.h"

namespace cotsieve {
namespace {

// Folded "answ", of "answer": where an answer phrase may start.
bool answ_at(const uint8_t* p) {
  return kBytes.fold[p[0]] == 'a' && kBytes.fold[p[1]] == 'n' && kBytes.fold[p[2]] == 's' && kBytes.fold[p[3]] == 'w';
}

// "\bo" or "\fb": where \boxed{ and \fbox{ may start. Three bytes, not two:
// LaTeX-heavy traces hold dozens of "\frac" and "\begin" per kilobyte, and
// each hint costs the answer parser a look.
bool box_at(const uint8_t* p) { return p[0] == '\\' && ((p[1] == 'b' && p[2] == 'o') || (p[1] == 'f' && p[2] == 'b')); }

// What a byte is, for the portable classifier. The bits are placed so that
// a byte's kind and the next byte's combine by shifts: a sentence end is an
// end mark (bit 2) followed by whitespace (bit 0), and a hint may start at a
// backslash or at an "a" (bit 4) followed by an "n" (bit 5).
enum : uint8_t { kSpace = 1, kLf = 2, kEndMark = 4, kBackslash = 8, kLetterA = 16, kLetterN = 32 };

struct ByteKinds {
  uint8_t of[256] = {};
  constexpr ByteKinds() {
    for (int c = 0; c < 256; ++c) {
      if (kBytes.whitespace[c]) of[c] |= kSpace;
      if (c == '\n') of[c] |= kLf;
      if (c == '.' || c == '!' || c == '?') of[c] |= kEndMark;
      if (c == '\\') of[c] |= kBackslash;
      if (kBytes.fold[c] == 'a') of[c] |= kLetterA;
      if (kBytes.fold[c] == 'n') of[c] |= kLetterN;
    }
  }
};
constexpr ByteKinds kKinds{};

// Bit k of the result is bit `bit` of byte k of `kinds`, for the eight
// bytes of a word: the multiply gathers one bit per byte into the top byte.
inline uint64_t gather(uint64_t kinds, int bit) {
  return (((kinds >> bit) & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56;
}

// The portable classifier: each byte's kind by one table load, eight kinds
// to a word, and the masks taken from the words eight bits at a time. Only
// words with a byte that may start a hint look further.
struct PortableClassifier {
  static uint64_t* put(uint64_t mask, uint64_t base, uint64_t* to) { return put_bits(mask, base, to); }

  static uint64_t kinds_at(const uint8_t* p) {
    uint64_t kinds = 0;
    for (int b = 0; b < 8; ++b) kinds |= uint64_t{kKinds.of[p[b]]} << (8 * b);
    return kinds;
  }

  BlockMasks operator()(const uint8_t* p) const {
    BlockMasks m{0, 0, 0, 0};
    uint64_t kinds = kinds_at(p);
    for (int w = 0; w < 8; ++w) {
      // The next word's kinds; past the last word only the one byte that
      // the last byte needs (the look-ahead is three bytes).
      const uint64_t following = w < 7 ? kinds_at(p + 8 * w + 8) : uint64_t{kKinds.of[p[64]]};
      const uint64_t next = (kinds >> 8) | (following << 56);  // each byte's following byte's kind
      const int at = 8 * w;
      m.space |= gather(kinds, 0) << at;
      m.lf |= gather(kinds, 1) << at;
      m.end |= gather(kinds & (next << 2), 2) << at;  // an end mark, then whitespace
      const uint64_t may_start = gather(kinds, 3) | gather(kinds & (next >> 1), 4);  // "\", or "a" then "n"
      for (uint64_t c = may_start; __builtin_expect(c != 0, 0); c &= c - 1) {
        const int j = at + __builtin_ctzll(c);
        if (box_at(p + j) || answ_at(p + j)) m.hint |= uint64_t{1} << j;
      }
      kinds = following;
    }
    return m;
  }
};

uint64_t layout_batch_portable(const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to) {
  return layout_batch(t, n, i, to, PortableClassifier{});
}

using BatchFn = uint64_t (*)(const uint8_t*, uint64_t, uint64_t, LayoutCursors&);

BatchFn chosen_batch() {
#ifdef COTSIEVE_X86_KERNELS
  switch (simd_level()) {
    // The AVX-512 kernel writes offsets with VBMI2's byte compress; AVX-512
    // CPUs without it (Skylake and Cascade Lake servers) take the AVX2 one.
    case SimdLevel::kAvx512:
      return __builtin_cpu_supports("avx512vbmi2") ? layout_batch_avx512 : layout_batch_avx2;
    case SimdLevel::kAvx2: return layout_batch_avx2;
    case SimdLevel::kNone: break;
  }
#endif
  return layout_batch_portable;
}

// The lists a batch writes to, each with room for a batch.
struct LayoutLists {
  Offsets &hints, &units;
};

// Blocks from `i` while their look-ahead lies inside t[0, n), a batch at a
// time, with room made in the lists before each batch. Offsets are relative
// to `t`.
uint64_t run_batches(BatchFn batch, const uint8_t* t, uint64_t n, uint64_t i, LayoutCursors& to, LayoutLists lists) {
  while (i + kBlockBytes + kLookahead <= n) {
    to.hints = lists.hints.reserve_more(kBatchSlots + kSpareSlots);
    to.units = lists.units.reserve_more(kBatchSlots + kSpareSlots);
    i = batch(t, n, i, to);
    lists.hints.grow_to(to.hints);
    lists.units.grow_to(to.units);
  }
  return i;
}

// The last one or two blocks, whose look-ahead would leave the text: copied
// into whitespace, which neither cuts, nor starts a word, nor completes a
// sentence end's or a hint's bytes that the text does not hold itself. (A
// sentence end at the last byte is one, as the text end counts as space.)
void tail_blocks(BatchFn batch, const uint8_t* t, uint64_t n, uint64_t from, LayoutCursors& to, LayoutLists lists) {
  const uint64_t rest = n - from;
  if (rest == 0) return;
  uint8_t padded[2 * kBlockBytes + kLookahead];
  std::memset(padded, ' ', sizeof padded);
  std::memcpy(padded, t + from, rest);
  const size_t first_hint = lists.hints.size(), first_unit = lists.units.size();
  const uint64_t blocks = (rest + kBlockBytes - 1) / kBlockBytes;
  run_batches(batch, padded, blocks * kBlockBytes + kLookahead, 0, to, lists);
  lists.hints.shift_from(first_hint, from);
  lists.units.shift_from(first_unit, from);
}

}  // namespace

void compute_layout(const uint8_t* t, uint64_t n, StepStarts steps, Layout& out) {
  static const BatchFn batch = chosen_batch();
  out.answer_hints.clear();
  out.unit_starts.clear();
  const size_t n_blocks = (n + kBlockBytes - 1) / kBlockBytes;
  LayoutCursors to{out.blocks.reset(n_blocks), nullptr, nullptr, steps, 0, LayoutCarry{}};
  const LayoutLists lists{out.answer_hints, out.unit_starts};
  const uint64_t done = run_batches(batch, t, n, 0, to, lists);
  tail_blocks(batch, t, n, done, to, lists);
  out.blocks.resize(n_blocks);
  out.words = to.words;
}

}  // namespace cotsieve
