#include "text_batch.h"

#include <string>

namespace py = pybind11;

namespace cotsieve {
namespace {

// str -> UTF-8 without a copy when CPython already caches it. A str that is
// not valid Unicode (lone surrogates) goes to cotsieve._texts.utf8, the one
// rule for such text across the library.
py::object utf8_of(const py::handle& s, TextRef& ref) {
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(s.ptr(), &n);
  if (p != nullptr) {
    ref = {reinterpret_cast<const uint8_t*>(p), static_cast<uint64_t>(n)};
    return py::reinterpret_borrow<py::object>(s);
  }
  PyErr_Clear();
  py::object encoded = py::module_::import("cotsieve._texts").attr("utf8")(s);
  ref = {reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(encoded.ptr())),
         static_cast<uint64_t>(PyBytes_GET_SIZE(encoded.ptr()))};
  return encoded;
}

template <typename Offset>
void add_arrow_chunk(const py::array& offsets_arr, const uint8_t* data, std::vector<TextRef>& out) {
  auto offsets = offsets_arr.unchecked<Offset, 1>();
  for (py::ssize_t i = 0; i + 1 < offsets.shape(0); ++i) {
    Offset a = offsets(i), b = offsets(i + 1);
    if (a < 0 || b < a) throw py::value_error("corrupt Arrow offsets at position " + std::to_string(i));
    out.push_back({data + a, static_cast<uint64_t>(b - a)});
  }
}

}  // namespace

TextBatch TextBatch::from_sequence(const py::sequence& items) {
  TextBatch batch;
  const size_t n = py::len(items);
  batch.texts_.resize(n);
  batch.keepalive_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    py::object item = items[i];
    TextRef& ref = batch.texts_[i];
    if (PyUnicode_Check(item.ptr())) {
      batch.keepalive_.push_back(utf8_of(item, ref));
    } else if (PyBytes_Check(item.ptr())) {
      ref = {reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(item.ptr())),
             static_cast<uint64_t>(PyBytes_GET_SIZE(item.ptr()))};
      batch.keepalive_.push_back(item);
    } else if (PyByteArray_Check(item.ptr())) {
      // A bytearray can be resized under us; freeze a copy.
      py::bytes frozen(PyByteArray_AS_STRING(item.ptr()), PyByteArray_GET_SIZE(item.ptr()));
      ref = {reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(frozen.ptr())),
             static_cast<uint64_t>(PyBytes_GET_SIZE(frozen.ptr()))};
      batch.keepalive_.push_back(frozen);
    } else {
      std::string type = py::str(py::type::handle_of(item).attr("__name__"));
      throw py::type_error("text at index " + std::to_string(i) + " is " + type +
                           ", expected str or bytes");
    }
  }
  return batch;
}

TextBatch TextBatch::from_arrow_chunks(const py::list& chunks) {
  TextBatch batch;
  for (const py::handle& chunk : chunks) {
    auto pair = chunk.cast<py::tuple>();
    py::array offsets = pair[0].cast<py::array>();
    py::array data = pair[1].cast<py::array>();
    if (offsets.ndim() != 1 || data.ndim() != 1 || data.itemsize() != 1)
      throw py::value_error("Arrow chunk must be (1-d offsets, 1-d uint8 data)");
    const auto* bytes = static_cast<const uint8_t*>(data.data());
    const uint64_t data_len = static_cast<uint64_t>(data.shape(0));
    size_t before = batch.texts_.size();
    if (offsets.dtype().is(py::dtype::of<int32_t>())) {
      add_arrow_chunk<int32_t>(offsets, bytes, batch.texts_);
    } else if (offsets.dtype().is(py::dtype::of<int64_t>())) {
      add_arrow_chunk<int64_t>(offsets, bytes, batch.texts_);
    } else {
      throw py::type_error("Arrow offsets must be int32 or int64");
    }
    for (size_t i = before; i < batch.texts_.size(); ++i) {
      const TextRef& r = batch.texts_[i];
      if (r.size > 0 && static_cast<uint64_t>(r.data - bytes) + r.size > data_len)
        throw py::value_error("corrupt Arrow offsets: text " + std::to_string(i) + " runs past the data buffer");
    }
    batch.keepalive_.push_back(offsets);
    batch.keepalive_.push_back(data);
  }
  return batch;
}

uint64_t TextBatch::total_bytes() const {
  uint64_t n = 0;
  for (const auto& t : texts_) n += t.size;
  return n;
}

}  // namespace cotsieve
