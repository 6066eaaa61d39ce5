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

// What a byte is, for the portable classifier: one table load per byte,
// and the rare bytes that may start a hint are looked at further.
enum : uint8_t { kSpace = 1, kLf = 2, kEndMark = 4, kHintStart = 8 };

struct ByteKinds {
  uint8_t of[256] = {};
  constexpr ByteKinds() {
    for (int c = 0; c < 256; ++c) {
      if (kBytes.whitespace[c]) of[c] |= kSpace;
      if (c == '\n') of[c] |= kLf;
      if (c == '.' || c == '!' || c == '?') of[c] |= kEndMark;
      if (c == '\\' || kBytes.fold[c] == 'a') of[c] |= kHintStart;
    }
  }
};
constexpr ByteKinds kKinds{};

// The portable classifier: a byte at a time, with the same look-ahead as
// the vector ones.
struct PortableClassifier {
  static uint64_t* put(uint64_t mask, uint64_t base, uint64_t* to) { return put_bits(mask, base, to); }

  BlockMasks operator()(const uint8_t* p) const {
    BlockMasks m{0, 0, 0, 0};
    for (int j = 0; j < 64; ++j) {
      const uint8_t kind = kKinds.of[p[j]];
      m.space |= uint64_t{(kind & kSpace) != 0} << j;
      m.lf |= uint64_t{(kind & kLf) != 0} << j;
      m.end |= uint64_t{(kind & kEndMark) != 0 && kBytes.whitespace[p[j + 1]]} << j;
      if (__builtin_expect(kind & kHintStart, 0) && (box_at(p + j) || answ_at(p + j))) m.hint |= uint64_t{1} << j;
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
  LayoutCursors to{out.blocks.reset((n + kBlockBytes - 1) / kBlockBytes), nullptr, nullptr, steps, 0, LayoutCarry{}};
  const LayoutLists lists{out.answer_hints, out.unit_starts};
  const uint64_t done = run_batches(batch, t, n, 0, to, lists);
  tail_blocks(batch, t, n, done, to, lists);
  out.words = to.words;
}

}  // namespace cotsieve
