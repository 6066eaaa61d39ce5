// Byte classification shared by the compiler, the scanner and the segmenter.
// See docs/semantics.md for the definitions these tables implement.
#pragma once

#include <array>
#include <cstdint>

namespace cotsieve {

struct ByteTables {
  std::array<bool, 256> word{};         // [A-Za-z0-9_]
  std::array<bool, 256> whitespace{};   // space, tab, CR, LF
  std::array<bool, 256> line_prefix{};  // space, tab, * # > -
  std::array<bool, 256> sentence_end{}; // . ! ? :
  std::array<uint8_t, 256> fold{};      // ASCII lower-casing, identity elsewhere

  constexpr ByteTables() {
    for (int c = 0; c < 256; ++c) {
      word[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '_';
      fold[c] = static_cast<uint8_t>((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    for (uint8_t c : {' ', '\t', '\r', '\n'}) whitespace[c] = true;
    for (uint8_t c : {' ', '\t', '*', '#', '>', '-'}) line_prefix[c] = true;
    for (uint8_t c : {'.', '!', '?', ':'}) sentence_end[c] = true;
  }
};

inline constexpr ByteTables kBytes{};

}  // namespace cotsieve
