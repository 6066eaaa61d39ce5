// Field extraction from JSON Lines: the reader's fast path.
//
// Each line is validated as JSON with the grammar of Python's `json.loads`
// (NaN, Infinity and -Infinity included, no control characters inside
// strings) and the requested top-level fields are decoded into UTF-8
// columns. A line is `kParsed` only when the outcome is certain to equal the
// Python per-line parser's; any line that might differ (malformed JSON, a
// missing or non-string text, invalid UTF-8, a lone surrogate escape, a
// byte-order mark, an escaped or repeated key, a float or a container in a
// carried field) is `kNeedsFullParser`, and the caller hands it to the Python
// parser, which gives the exact reason. So the fast path changes speed, not
// results, with one deliberate exception: values nested deeper than Python's
// recursion limit (about 1,000 levels) are valid JSON and are accepted here
// (a line that goes to the Python parser for another reason is still
// rejected for its depth).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace cotsieve::jsonl {

enum LineStatus : uint8_t { kParsed = 0, kBlank = 1, kNeedsFullParser = 2 };

// An allocator whose resize leaves new elements default-initialised, which
// for bytes means untouched: a string is decoded into room sized for the
// rest of its line, and zeroing that room first would cost another pass.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}

  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using ColumnBytes = std::vector<uint8_t, UninitializedAllocator<uint8_t>>;

// One requested field, laid out as an Arrow large_binary column: `offsets`
// has n + 1 entries, `valid` is 0 where the value is absent or null.
struct Column {
  std::vector<int64_t> offsets;
  ColumnBytes data;
  std::vector<uint8_t> valid;
};

struct Extraction {
  std::vector<uint8_t> status;
  std::vector<Column> columns;       // one per requested key, in order
  std::vector<uint8_t> think_tagged;  // a parsed text holds "<think>" or "</think>"
};

// `offsets` holds n_lines + 1 byte offsets into `data`; line i is
// [offsets[i], offsets[i + 1]). keys[0] is the text: a parsed line has it as
// a string. The other keys are carried fields: a string, an integer or a
// boolean becomes its text (as Python's `json.dumps` writes it), a missing
// key or null is null. `max_int_digits` is Python's limit on the digits of an
// integer (`sys.get_int_max_str_digits()`, 0 for none).
Extraction extract(const uint8_t* data, const int64_t* offsets, size_t n_lines, const std::vector<std::string>& keys,
                   size_t max_int_digits);

// Start offsets of the lines of `data` followed by `size`: 0, then one past
// every LF. A last line without an LF still counts as a line.
std::vector<int64_t> line_offsets(const uint8_t* data, size_t size);

}  // namespace cotsieve::jsonl
