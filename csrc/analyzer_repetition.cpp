#include "analyzer_repetition.h"

#include <algorithm>

#include "hash.h"

namespace cotsieve {

uint64_t RepeatFinder::repeated_bytes(const uint8_t* t) {
  uint64_t repeated = 0;
  pair_with_first_of_key(t);
  if (!unlike_.empty()) unlike_.clear();  // clear() also wipes the buckets, however few units used them
  for (const Pair& pair : pairs_)
    if (same_bytes(t, pair.earlier, pair.later) || repeats_an_unlike(t, pair.later))
      repeated += units_[pair.later].length;
  return repeated;
}

bool RepeatFinder::repeats_an_unlike(const uint8_t* t, size_t unit) {
  const uint64_t hash = hash_bytes(t + units_[unit].start, units_[unit].length);
  const auto [first, last] = unlike_.equal_range(hash);
  for (auto it = first; it != last; ++it)
    if (same_bytes(t, it->second, unit)) return true;
  unlike_.emplace(hash, unit);
  return false;
}

uint64_t RepeatFinder::key_of(const uint8_t* t, const UnitRef& u) const {
  const uint8_t* p = t + u.start;
  // The middle word is rotated into the first rather than mixed on its
  // own: one multiply per unit. Keys only pick units to compare.
  const uint64_t middle = load8(p + u.length / 2 - 4), rotated = (middle << 29) | (middle >> 35);
  const uint64_t mixed = mix(load8(p) ^ rotated ^ kHashKeys[2] ^ u.length, load8(p + u.length - 8) ^ kHashKeys[3]);
  return (mixed & ~kGenerationBits) | generation_;
}

void RepeatFinder::next_generation() {
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

void RepeatFinder::pair_with_first_of_key(const uint8_t* t) {
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

}  // namespace cotsieve
