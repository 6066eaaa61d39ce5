#include "jsonl.h"

#include <algorithm>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace cotsieve::jsonl {
namespace {


// The bytes of `w` (read little-endian) that are '"', '\\' or a control
// character (below 0x20), the bytes that end a run of plain string content,
// as the top bit of each. Only the lowest bit set is exact (a borrow can
// mark a byte above a special one), which is all a scan needs: its index /
// 8 is the first special byte.
inline uint64_t string_specials(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  const uint64_t quote = w ^ (kOnes * '"'), backslash = w ^ (kOnes * '\\');
  const uint64_t zero_in_quote = (quote - kOnes) & ~quote, zero_in_backslash = (backslash - kOnes) & ~backslash;
  const uint64_t below_space = w - kOnes * 0x20;
  return (zero_in_quote | zero_in_backslash | below_space) & ~w & kHighs;
}

bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

// The byte a one-letter escape stands for (\" \\ \/ \b \f \n \r \t), or -1.
int simple_escape(uint8_t c) {
  switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '/': return '/';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return -1;
  }
}

int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict UTF-8: no overlong forms, no encoded surrogates, nothing past U+10FFFF.
bool valid_utf8(const uint8_t* p, const uint8_t* end) {
  while (p < end) {
    if (end - p >= 32) {  // 32 ASCII bytes at once: one branch, where one per 8 bytes was a tenth of the reader's time
      uint64_t words[4];
      std::memcpy(words, p, 32);
      if (((words[0] | words[1] | words[2] | words[3]) & 0x8080808080808080ull) == 0) {
        p += 32;
        continue;
      }
    }
    if (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        p += 8;
        continue;
      }
    }
    const uint8_t c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    uint8_t lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (end - p <= extra || p[1] < lo || p[1] > hi) return false;
    for (int k = 2; k <= extra; ++k)
      if ((p[k] & 0xC0) != 0x80) return false;
    p += extra + 1;
  }
  return true;
}

// Writes `cp` as UTF-8 at `out`; returns one past it.
uint8_t* put_utf8(uint8_t* out, uint32_t cp) {
  if (cp < 0x80) {
    *out++ = static_cast<uint8_t>(cp);
  } else if (cp < 0x800) {
    *out++ = static_cast<uint8_t>(0xC0 | (cp >> 6));
    *out++ = static_cast<uint8_t>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out++ = static_cast<uint8_t>(0xE0 | (cp >> 12));
    *out++ = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
    *out++ = static_cast<uint8_t>(0x80 | (cp & 0x3F));
  } else {
    *out++ = static_cast<uint8_t>(0xF0 | (cp >> 18));
    *out++ = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
    *out++ = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
    *out++ = static_cast<uint8_t>(0x80 | (cp & 0x3F));
  }
  return out;
}

// A recursive-descent reader over one line. Every method returns false when
// the line is not certain to parse the same way in Python.
class LineReader {
 public:
  // `max_int_digits`: Python's limit on the digits of an integer (0: none);
  // a longer integer goes to the Python parser for its error.
  LineReader(const uint8_t* begin, const uint8_t* end, size_t max_int_digits, std::vector<uint8_t>& seen)
      : p_(begin), end_(end), max_int_digits_(max_int_digits), seen_(seen) {}

  bool read(const std::vector<std::string>& keys, std::vector<Column>& columns) {
    skip_ws();
    if (!consume('{')) return false;  // not an object, or a byte-order mark
    std::vector<uint8_t>& seen = seen_;
    seen.assign(keys.size(), 0);
    skip_ws();
    if (!consume('}')) {
      do {
        skip_ws();
        if (!read_member(keys, columns, seen)) return false;
        skip_ws();
      } while (consume(','));
      if (!consume('}')) return false;
    }
    skip_ws();
    return p_ == end_ && seen[0];
  }

 private:
  bool read_member(const std::vector<std::string>& keys, std::vector<Column>& columns, std::vector<uint8_t>& seen) {
    if (!consume('"')) return false;
    const uint8_t* key = p_;
    while (p_ < end_ && *p_ != '"') {
      if (*p_ == '\\' || *p_ < 0x20) return false;  // an escaped key could equal a wanted one
      ++p_;
    }
    const size_t key_len = static_cast<size_t>(p_ - key);
    if (!consume('"')) return false;
    skip_ws();
    if (!consume(':')) return false;
    skip_ws();
    for (size_t k = 0; k < keys.size(); ++k) {
      if (keys[k].size() != key_len || std::memcmp(keys[k].data(), key, key_len) != 0) continue;
      if (seen[k]) return false;  // Python keeps the last duplicate; leave that to it
      seen[k] = 1;
      return k == 0 ? peek('"') && read_string(&columns[0]) : read_field(columns[k]);
    }
    return skip_value();
  }

  // A carried field: its text as `json.dumps` would write the parsed value.
  bool read_field(Column& column) {
    if (peek('"')) return read_string(&column);
    if (literal("null")) return true;
    for (const char* word : {"true", "false"})
      if (literal(word)) return set_text(column, word);
    const uint8_t* start = p_;
    bool integer = false;
    if (!read_number(&integer) || !integer) return false;
    // json.dumps(int("-0")) is "0"; every other integer keeps its digits.
    if (p_ - start == 2 && start[0] == '-' && start[1] == '0') return set_text(column, "0");
    column.data.insert(column.data.end(), start, p_);
    column.valid.back() = 1;
    return true;
  }

  static bool set_text(Column& column, const char* text) {
    column.data.insert(column.data.end(), text, text + std::strlen(text));
    column.valid.back() = 1;
    return true;
  }

  // Any JSON value, validated without decoding. Iterative, so nesting of any
  // depth costs heap, not stack.
  bool skip_value() {
    std::vector<uint8_t>& closers = closers_;
    closers.clear();
    while (true) {
      if (peek('{') || peek('[')) {
        const uint8_t close = *p_ == '{' ? '}' : ']';
        ++p_;
        skip_ws();
        if (!consume(close)) {
          closers.push_back(close);
          if (close == '}' && !object_key()) return false;
          continue;  // the container's first value
        }
      } else if (!skip_scalar()) {
        return false;
      }
      // After a value: close what ends here, or go on to the next value.
      while (true) {
        if (closers.empty()) return true;
        skip_ws();
        if (consume(',')) {
          skip_ws();
          if (closers.back() == '}' && !object_key()) return false;
          break;
        }
        if (!consume(closers.back())) return false;
        closers.pop_back();
      }
    }
  }

  bool object_key() {
    if (!peek('"') || !read_string(nullptr)) return false;
    skip_ws();
    if (!consume(':')) return false;
    skip_ws();
    return true;
  }

  bool skip_scalar() {
    if (p_ >= end_) return false;
    switch (*p_) {
      case '"':
        return read_string(nullptr);
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      case 'N':
        return literal("NaN");
      case 'I':
        return literal("Infinity");
      default:
        if (literal("-Infinity")) return true;
        bool integer = false;
        return read_number(&integer);
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?, as Python's scanner reads it.
  bool read_number(bool* integer) {
    consume('-');
    const uint8_t* digits = p_;
    if (consume('0')) {
    } else if (p_ < end_ && *p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && is_digit(*p_)) ++p_;
    } else {
      return false;
    }
    const size_t n_digits = static_cast<size_t>(p_ - digits);
    *integer = true;
    if (p_ + 1 < end_ && *p_ == '.' && is_digit(p_[1])) {
      p_ += 2;
      while (p_ < end_ && is_digit(*p_)) ++p_;
      *integer = false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      const uint8_t* e = p_ + 1;
      if (e < end_ && (*e == '+' || *e == '-')) ++e;
      if (e < end_ && is_digit(*e)) {
        while (e < end_ && is_digit(*e)) ++e;
        p_ = e;
        *integer = false;
      }
    }
    return !(*integer && max_int_digits_ && n_digits > max_int_digits_);
  }

  // A string at p_ (which is '"'); decoded into `column` unless it is null.
  // A string decodes to at most its own bytes (no escape is shorter than
  // what it stands for), so the column is first sized for the rest of the
  // line, written through a pointer, and trimmed at the closing quote. (A
  // refused line is trimmed by extract.) Appending each run between escapes
  // cost a third of the reader's time on real traces, which hold an escape
  // every 20 bytes or so: "\\n", and LaTeX's "\\\\".
  bool read_string(Column* column) {
    ++p_;
    uint8_t* out = column ? room_for_rest_of_line(column->data) : nullptr;
    while (true) {
      const uint8_t* run = p_;
      skip_plain();
      if (out) {
        std::memcpy(out, run, static_cast<size_t>(p_ - run));
        out += p_ - run;
      }
      if (p_ >= end_ || *p_ < 0x20) return false;
      if (*p_ == '"') break;
      if (!read_escape(out, column != nullptr)) return false;
    }
    ++p_;
    if (column) {
      column->data.resize(static_cast<size_t>(out - column->data.data()));
      column->valid.back() = 1;
    }
    return true;
  }

  // Sizes `data` for the rest of the line past its end; returns where the
  // next byte goes. Grown by doubling: a field before a long text asks for
  // the rest of its line every time, and would otherwise move once per line.
  uint8_t* room_for_rest_of_line(ColumnBytes& data) const {
    const size_t start = data.size(), room = start + static_cast<size_t>(end_ - p_);
    if (data.capacity() < room) data.reserve(std::max(room, 2 * data.capacity()));
    data.resize(room);
    return data.data() + start;
  }

  // To the first byte at or after p_ that ends plain string content, or to
  // end_: sixteen bytes at a time with SSE2 (every x86-64 CPU), else eight
  // as one word; the mask of the block that holds one says where, with no
  // loop back over its bytes.
  void skip_plain() {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), last_control = _mm_set1_epi8(0x1f);
    for (; end_ - p_ >= 16; p_ += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
      const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, last_control), v);  // v <= 0x1f, unsigned
      const __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
      if (const int mask = _mm_movemask_epi8(special)) {
        p_ += __builtin_ctz(static_cast<unsigned>(mask));
        return;
      }
    }
#endif
    for (; end_ - p_ >= 8; p_ += 8) {
      uint64_t w;
      std::memcpy(&w, p_, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
      w = __builtin_bswap64(w);  // the first byte in memory must be the word's lowest, for the count below
#endif
      if (const uint64_t specials = string_specials(w)) {
        p_ += __builtin_ctzll(specials) / 8;
        return;
      }
    }
    while (p_ < end_ && *p_ != '"' && *p_ != '\\' && *p_ >= 0x20) ++p_;
  }

  // An escape at p_ (which is '\\'). Surrogate pairs combine; a lone
  // surrogate is refused when decoding, since its bytes depend on the
  // Python parser's error handler.
  // Writes what it stands for at `out` and moves `out` past it, unless `out`
  // is null.
  bool read_escape(uint8_t*& out, bool strict_surrogates) {
    if (end_ - p_ < 2) return false;
    const uint8_t c = p_[1];
    p_ += 2;
    if (const int simple = simple_escape(c); simple >= 0) {
      if (out) *out++ = static_cast<uint8_t>(simple);
      return true;
    }
    uint32_t cp;
    if (c != 'u' || !hex4(&cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF && end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
      const uint8_t* back = p_;
      p_ += 2;
      uint32_t low;
      if (hex4(&low) && low >= 0xDC00 && low <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      } else {
        p_ = back;  // not a pair: the high surrogate stands alone
      }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF && strict_surrogates) return false;
    if (out) out = put_utf8(out, cp);
    return true;
  }

  bool hex4(uint32_t* value) {
    if (end_ - p_ < 4) return false;
    *value = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex_value(p_[k]);
      if (h < 0) return false;
      *value = *value * 16 + static_cast<uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  bool literal(const char* word) {
    const size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  void skip_ws() {
    while (p_ < end_ && is_ws(*p_)) ++p_;
  }
  bool peek(uint8_t c) const { return p_ < end_ && *p_ == c; }
  bool consume(uint8_t c) {
    if (!peek(c)) return false;
    ++p_;
    return true;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  const size_t max_int_digits_;
  std::vector<uint8_t>& seen_;    // which keys the line has had, reused from line to line
  std::vector<uint8_t> closers_;  // of the containers open in skip_value
};

// Both think tags end in "think>"; '>' is rare in traces, so memchr finds
// the few places worth comparing.
bool has_think_tag(const uint8_t* p, const uint8_t* end) {
  if (end - p < 6) return false;
  for (const uint8_t* at = p + 5; at < end; ++at) {
    at = static_cast<const uint8_t*>(std::memchr(at, '>', static_cast<size_t>(end - at)));
    if (at == nullptr) return false;
    if (std::memcmp(at - 5, "think", 5) == 0) return true;
  }
  return false;
}

bool blank(const uint8_t* p, const uint8_t* end) {
  while (p < end && is_ws(*p)) ++p;
  return p == end;
}

}  // namespace

Extraction extract(const uint8_t* data, const int64_t* offsets, size_t n_lines, const std::vector<std::string>& keys,
                   size_t max_int_digits) {
  Extraction result;
  result.status.assign(n_lines, kNeedsFullParser);
  result.think_tagged.assign(n_lines, 0);
  std::vector<uint8_t> seen;
  result.columns.resize(keys.size());
  for (Column& c : result.columns) {
    c.offsets.reserve(n_lines + 1);
    c.offsets.push_back(0);
    c.valid.reserve(n_lines);
  }
  // The text dominates the bytes of a line; reserving for it avoids regrowth.
  if (!keys.empty() && n_lines) result.columns[0].data.reserve(static_cast<size_t>(offsets[n_lines] - offsets[0]));
  for (size_t i = 0; i < n_lines; ++i) {
    const uint8_t* begin = data + offsets[i];
    const uint8_t* end = data + offsets[i + 1];
    for (Column& c : result.columns) c.valid.push_back(0);
    if (blank(begin, end)) {
      result.status[i] = kBlank;
    } else if (!keys.empty() && valid_utf8(begin, end) &&
               LineReader(begin, end, max_int_digits, seen).read(keys, result.columns)) {
      result.status[i] = kParsed;
      const Column& text = result.columns[0];
      result.think_tagged[i] = has_think_tag(text.data.data() + text.offsets.back(), text.data.data() + text.data.size());
    } else {
      // Drop whatever the line decoded before it was refused.
      for (Column& c : result.columns) {
        c.data.resize(static_cast<size_t>(c.offsets.back()));
        c.valid.back() = 0;
      }
    }
    for (Column& c : result.columns) c.offsets.push_back(static_cast<int64_t>(c.data.size()));
  }
  return result;
}

std::vector<int64_t> line_offsets(const uint8_t* data, size_t size) {
  std::vector<int64_t> offsets{0};
  const uint8_t* end = data + size;
  for (const uint8_t* p = data; p < end;) {
    const void* lf = std::memchr(p, '\n', static_cast<size_t>(end - p));
    p = lf ? static_cast<const uint8_t*>(lf) + 1 : end;
    offsets.push_back(p - data);
  }
  return offsets;
}

}  // namespace cotsieve::jsonl
