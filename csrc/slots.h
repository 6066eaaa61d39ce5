// Storage that only grows, for per-text lists reused from text to text.
#pragma once

#include <cstddef>
#include <memory>

namespace cotsieve {

// Room for a text's items, kept for the next text. The slots are not
// cleared (default-initialized): the writer fills each slot it keeps, and on
// long texts clearing them cost as much as writing them.
template <typename T>
class Slots {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* begin() { return store_.get(); }
  T* end() { return store_.get() + size_; }
  const T* begin() const { return store_.get(); }
  const T* end() const { return store_.get() + size_; }
  T& operator[](size_t i) { return store_[i]; }
  const T& operator[](size_t i) const { return store_[i]; }

  // Empties the list and makes room for `room` items; returns the first slot.
  T* reset(size_t room) {
    if (capacity_ < room) {
      store_.reset(new T[room]);
      capacity_ = room;
    }
    size_ = 0;
    return store_.get();
  }
  void resize(size_t n) { size_ = n; }  // after writing the slots below n

 private:
  std::unique_ptr<T[]> store_;
  size_t capacity_ = 0, size_ = 0;
};

}  // namespace cotsieve
