// Repetition (docs/metrics.md): the bytes of a text's units that repeat an
// earlier unit. The scratch holds a RepeatFinder, and the step walk fills
// its units through the inline start() and keep().
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "slots.h"

namespace cotsieve {

constexpr uint64_t kRepeatableUnitBytes = 16;

// The bytes of a text's units that repeat an earlier unit's bytes, exactly.
// A key made of a unit's length and its first, middle and last eight bytes
// finds an earlier unit worth comparing, and only then are the bytes
// compared. (Hashing every byte of every unit cost a loop whose length the
// branch predictor could not know.) Units are at least kRepeatableUnitBytes
// long, so all three eight-byte loads lie inside the unit.
//
// Whether a unit repeats is close to a coin toss on looping traces, so the
// common path takes no branch on it: the long units are gathered first, one
// pass over them pairs each with the first earlier unit of its key, and a
// second compares the pairs' bytes. Near-repeats share keys often enough
// ("subtract 3 to get 31." after "subtract 1 to get 31."): a unit whose
// bytes differ from its key's first unit is looked up by a hash of all its
// bytes among the earlier such units, so that many units sharing a key
// (which text can be built to do) cost linear time, not quadratic.
class RepeatFinder {
 public:
  struct UnitRef {
    uint64_t start, length, key;
  };

  // Before each text: room for `units` units, for the caller to write
  // (start and length) and then to `keep` the first of them.
  UnitRef* start(size_t units) {
    pairs_.reset(units);
    return units_.reset(units);
  }
  // The units kept: those of at least kRepeatableUnitBytes, in text order.
  void keep(size_t n_units) { units_.resize(n_units); }

  // The repeated bytes of the units kept.
  uint64_t repeated_bytes(const uint8_t* t);

 private:
  struct Pair {
    size_t earlier, later;
  };

  bool same_bytes(const uint8_t* t, size_t a, size_t b) const {
    return units_[a].length == units_[b].length &&
           std::memcmp(t + units_[a].start, t + units_[b].start, units_[b].length) == 0;
  }

  // Whether `unit`, unlike the first unit of its key, has the bytes of an
  // earlier such unit; if not, it is remembered as one.
  bool repeats_an_unlike(const uint8_t* t, size_t unit);

  struct Slot {
    uint64_t key;
    size_t unit;
  };
  static constexpr uint64_t kGenerationBits = 0xFFFF;

  uint64_t key_of(const uint8_t* t, const UnitRef& u) const;

  bool taken(size_t i) const { return (slots_[i].key & kGenerationBits) == generation_; }

  // A key's own slot, from bits above the generation's.
  size_t home_of(uint64_t key) const { return (key >> 16) & mask_; }

  // The first slot from the key's own that is empty or holds the key.
  size_t slot_of(uint64_t key) const {
    size_t i = home_of(key);
    while (taken(i) && slots_[i].key != key) i = (i + 1) & mask_;
    return i;
  }

  // Starts a generation, with at most one unit in four slots: short probes.
  void next_generation();

  // Pairs every unit whose key an earlier unit has with the first such unit.
  void pair_with_first_of_key(const uint8_t* t);

  Slots<UnitRef> units_;
  Slots<Pair> pairs_;
  std::unique_ptr<Slot[]> slots_;  // cleared, unlike Slots: a key is read before it is written
  std::unordered_multimap<uint64_t, size_t> unlike_;  // units unlike the first of their key, by hash of their bytes
  size_t slots_capacity_ = 0, mask_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace cotsieve
