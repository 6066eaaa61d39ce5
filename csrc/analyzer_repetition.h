// Repetition (docs/metrics.md): the bytes of a text's units that repeat an
// earlier unit. Header-only: the analyzer's scratch holds a RepeatFinder, and
// the step walk fills its units inline.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "hash.h"
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
  uint64_t repeated_bytes(const uint8_t* t) {
    uint64_t repeated = 0;
    pair_with_first_of_key(t);
    if (!unlike_.empty()) unlike_.clear();  // clear() also wipes the buckets, however few units used them
    for (const Pair& pair : pairs_)
      if (same_bytes(t, pair.earlier, pair.later) || repeats_an_unlike(t, pair.later))
        repeated += units_[pair.later].length;
    return repeated;
  }

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
  bool repeats_an_unlike(const uint8_t* t, size_t unit) {
    const uint64_t hash = hash_bytes(t + units_[unit].start, units_[unit].length);
    const auto [first, last] = unlike_.equal_range(hash);
    for (auto it = first; it != last; ++it)
      if (same_bytes(t, it->second, unit)) return true;
    unlike_.emplace(hash, unit);
    return false;
  }

  struct Slot {
    uint64_t key;
    size_t unit;
  };
  static constexpr uint64_t kGenerationBits = 0xFFFF;

  uint64_t key_of(const uint8_t* t, const UnitRef& u) const {
    const uint8_t* p = t + u.start;
    // The middle word is rotated into the first rather than mixed on its
    // own: one multiply per unit. Keys only pick units to compare.
    const uint64_t middle = load8(p + u.length / 2 - 4), rotated = (middle << 29) | (middle >> 35);
    const uint64_t mixed = mix(load8(p) ^ rotated ^ kHashKeys[2] ^ u.length, load8(p + u.length - 8) ^ kHashKeys[3]);
    return (mixed & ~kGenerationBits) | generation_;
  }

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
  void next_generation() {
    size_t capacity = 16;
    while (capacity < 4 * units_.size()) capacity <<= 1;
    if (slots_capacity_ < capacity) {
      slots_.reset(new Slot[capacity]());
      slots_capacity_ = capacity;
      generation_ = 0;
    }
    if (++generation_ > kGenerationBits) {
      std::fill(slots_.get(), slots_.get() + slots_capacity_, Slot{0, 0});
      generation_ = 1;
    }
    mask_ = capacity - 1;
  }

  // Pairs every unit whose key an earlier unit has with the first such unit.
  void pair_with_first_of_key(const uint8_t* t) {
    next_generation();
    const size_t n_units = units_.size();
    for (UnitRef& unit : units_) unit.key = key_of(t, unit);
    // The slots of a long text's units lie beyond the L1 cache, and each
    // probe would wait on its load: the slot of a unit a few ahead is
    // fetched while this one's is probed.
    constexpr size_t kAhead = 8;
    Pair* pairs = pairs_.begin();
    size_t n_pairs = 0;
    for (size_t k = 0; k < n_units; ++k) {
      if (k + kAhead < n_units) __builtin_prefetch(&slots_[home_of(units_[k + kAhead].key)]);
      const uint64_t key = units_[k].key;
      Slot& slot = slots_[slot_of(key)];
      const bool seen = slot.key == key;
      pairs[n_pairs].earlier = slot.unit;  // field by field: see BoxCloser::push
      pairs[n_pairs].later = k;
      n_pairs += seen;
      slot.unit = seen ? slot.unit : k;
      slot.key = key;
    }
    pairs_.resize(n_pairs);
  }

  Slots<UnitRef> units_;
  Slots<Pair> pairs_;
  std::unique_ptr<Slot[]> slots_;  // cleared, unlike Slots: a key is read before it is written
  std::unordered_multimap<uint64_t, size_t> unlike_;  // units unlike the first of their key, by hash of their bytes
  size_t slots_capacity_ = 0, mask_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace cotsieve
