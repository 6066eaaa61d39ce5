#include "layout.h"

#include "bytes.h"
#include "cpu.h"
#include "layout_blocks.h"

namespace cotsieve {
namespace {

// What a byte may start, for the portable loop: most bytes are none of these
// but whitespace, so one table load and one rarely taken branch cover them.
enum : uint8_t { kSpace = 1, kNotable = 2 };

struct StartTable {
  uint8_t of[256] = {};
  constexpr StartTable() {
    for (int c = 0; c < 256; ++c) {
      if (kBytes.whitespace[c]) of[c] |= kSpace;
      // An "answ" is noted at its 'w', which is rarer than 'a'.
      if (c == '\n' || c == '.' || c == '!' || c == '?' || c == '\\' || kBytes.fold[c] == 'w') of[c] |= kNotable;
    }
  }
};
constexpr StartTable kStarts{};

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

// Hints stay ascending: no "\bo" or "\fb" can start inside an "answ". An
// "answ" that starts before `from` is the vector path's.
void note_byte(const uint8_t* t, uint64_t n, uint64_t from, uint64_t i, Layout& out) {
  if (t[i] == '\n') out.newlines.push_back(i);
  if (sentence_end_after(t, n, i)) out.sentence_ends.push_back(i + 1);
  if (box_at(t, n, i)) out.answer_hints.push_back(i);
  if (i >= from + 3 && answ_at(t, n, i - 3)) out.answer_hints.push_back(i - 3);
}

// The portable path, and the tail of the vector ones.
void scalar_layout(const uint8_t* t, uint64_t n, uint64_t from, bool prev_space, Layout& out) {
  uint64_t words = 0, after_space = prev_space ? 1 : 0;
  for (uint64_t i = from; i < n; ++i) {
    const uint8_t kind = kStarts.of[t[i]];
    const uint64_t space = kind & kSpace;
    words += ~space & after_space;
    after_space = space;
    if (__builtin_expect(kind & kNotable, 0)) note_byte(t, n, from, i, out);
  }
  out.words += words;
}

using BatchFn = uint64_t (*)(const uint8_t*, uint64_t, uint64_t, LayoutCursors&);

BatchFn vector_batch() {
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
  return nullptr;
}

// Whole blocks, a batch at a time, with room made in each list before it.
uint64_t vector_layout(BatchFn batch, const uint8_t* t, uint64_t n, Layout& out, bool& prev_space) {
  uint64_t i = 0;
  LayoutCursors to{nullptr, nullptr, nullptr, 0, prev_space ? 1u : 0u};
  while (i + kBlockBytes + kLookahead <= n) {
    to.lfs = out.newlines.reserve_more(kBatchSlots + kSpareSlots);
    to.ends = out.sentence_ends.reserve_more(kBatchSlots + kSpareSlots);
    to.hints = out.answer_hints.reserve_more(kBatchSlots + kSpareSlots);
    i = batch(t, n, i, to);
    out.newlines.grow_to(to.lfs);
    out.sentence_ends.grow_to(to.ends);
    out.answer_hints.grow_to(to.hints);
  }
  out.words += to.words;
  prev_space = to.after_space != 0;
  return i;
}

}  // namespace

void compute_layout(const uint8_t* t, uint64_t n, Layout& out) {
  out.newlines.clear();
  out.sentence_ends.clear();
  out.answer_hints.clear();
  out.words = 0;
  static const BatchFn batch = vector_batch();
  bool prev_space = true;
  const uint64_t done = batch ? vector_layout(batch, t, n, out, prev_space) : 0;
  scalar_layout(t, n, done, prev_space, out);
}

}  // namespace cotsieve
