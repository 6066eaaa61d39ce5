// The byte-string hash shared by repetition and answers. Inline: repetition
// mixes a key per unit on its hot path.
#pragma once

#include <cstdint>
#include <cstring>

namespace cotsieve {

// The high and low halves of a 64x64-bit product, folded: one multiply
// mixes 128 input bits, and independent products do not wait on each other.
inline uint64_t fold_multiply(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

// fold_multiply with both factors kept in the result. A bare product forgets
// one factor when the other is zero, which text can arrange (a word equal to
// the running state), and it is the same with its factors swapped. Here a zero
// factor leaves the other one in, and the rotate and the add make the two
// sides unequal partners. This keeps collisions out of natural text; the keys
// are public, so text built for it can still collide (docs/metrics.md).
inline uint64_t mix(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  const uint64_t high = b ^ static_cast<uint64_t>(product >> 64);
  return (a ^ static_cast<uint64_t>(product)) + ((high << 23) | (high >> 41));
}

inline uint64_t load8(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

constexpr uint64_t kHashKeys[4] = {0xa0761d6478bd642full, 0xe7037ed1a0b428dbull, 0x8ebc6af09c88c6e3ull,
                                   0x589965cc75374cc3ull};

// A 64-bit hash of a byte string: 16 bytes per multiply, three independent
// lanes on long strings, and overlapping loads for the last bytes instead of
// a byte loop. Strings of under 8 bytes fall back to bytes. Each chunk is
// mixed into its lane rather than replacing it, so no chunk can wipe what came
// before it, and `mix` keeps both of its words.
inline uint64_t hash_bytes(const uint8_t* p, uint64_t n) {
  uint64_t seed = n * kHashKeys[0], a = 0, b = 0;
  if (n >= 8) {
    uint64_t i = 0;
    if (n > 16) {
      uint64_t lane1 = seed, lane2 = seed;
      for (; i + 48 < n; i += 48) {
        seed ^= mix(load8(p + i) ^ kHashKeys[1], load8(p + i + 8) ^ seed);
        lane1 ^= mix(load8(p + i + 16) ^ kHashKeys[2], load8(p + i + 24) ^ lane1);
        lane2 ^= mix(load8(p + i + 32) ^ kHashKeys[3], load8(p + i + 40) ^ lane2);
      }
      seed ^= lane1 ^ lane2;
      for (; i + 16 < n; i += 16) seed ^= mix(load8(p + i) ^ kHashKeys[1], load8(p + i + 8) ^ seed);
    }
    a = load8(p + (n > 16 ? n - 16 : 0));
    b = load8(p + n - 8);
  } else {
    for (uint64_t k = 0; k < n; ++k) a = (a << 8) | p[k];
  }
  return fold_multiply(kHashKeys[1] ^ n, mix(a ^ kHashKeys[1], b ^ seed));
}

}  // namespace cotsieve
