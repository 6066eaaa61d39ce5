// A batch of texts viewed in place: Python str/bytes objects or Arrow string
// buffers. Nothing is copied except the UTF-8 encoding of a str that holds
// lone surrogates.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "scanner.h"

namespace cotsieve {

class TextBatch {
 public:
  // Items must be str, bytes or bytearray; anything else raises TypeError
  // naming its index.
  static TextBatch from_sequence(const pybind11::sequence& items);

  // Each chunk is (offsets, data): `offsets` holds length + 1 int32 or int64
  // entries already shifted by the array's slice offset, `data` is the uint8
  // value buffer. The arrays are read in place and kept alive by the batch.
  static TextBatch from_arrow_chunks(const pybind11::list& chunks);

  const std::vector<TextRef>& texts() const { return texts_; }
  size_t size() const { return texts_.size(); }
  uint64_t total_bytes() const;

 private:
  std::vector<TextRef> texts_;
  std::vector<pybind11::object> keepalive_;
};

}  // namespace cotsieve
