// Python bindings. Every scan releases the GIL; results come back as numpy
// arrays that Python wraps into Arrow without copying.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>

#include "analyzer.h"
#include "cpu.h"
#include "jsonl.h"
#include "scanner.h"
#include "text_batch.h"

namespace py = pybind11;
using namespace cotsieve;

namespace {

// (bytes, category, case_sensitive, boundary_start, boundary_end, anchor)
using PatternTuple = std::tuple<py::bytes, int32_t, bool, bool, bool, int>;

std::vector<PatternSpec> to_specs(const std::vector<PatternTuple>& tuples) {
  std::vector<PatternSpec> specs;
  specs.reserve(tuples.size());
  for (const auto& [text, category, case_sensitive, b_start, b_end, anchor] : tuples) {
    if (anchor < 0 || anchor > 2) throw py::value_error("anchor code out of range");
    specs.push_back({std::string(text), category, case_sensitive, b_start, b_end, static_cast<Anchor>(anchor)});
  }
  return specs;
}

py::array_t<uint32_t> count(const Scanner& scanner, const TextBatch& batch, int threads, int lanes) {
  const size_t n = batch.size(), p = scanner.pattern_count();
  py::array_t<uint32_t> out({n, p});
  uint32_t* counts = out.mutable_data();
  std::fill(counts, counts + n * p, 0u);
  {
    py::gil_scoped_release release;
    scanner.scan(batch.texts(), Scanner::worker_count(threads, n),
                 [&](int, size_t text, const std::vector<Match>& matches) {
                   uint32_t* row = counts + text * p;
                   for (const Match& m : matches) ++row[m.pattern];
                 },
                 lanes);
  }
  return out;
}

// Rows gathered per worker come back in document order: each worker saw its
// blocks in increasing order, so a stable sort by document is enough.
template <typename Row>
std::vector<Row> in_doc_order(std::vector<std::vector<Row>>& per_worker) {
  std::vector<Row> all;
  for (auto& v : per_worker) all.insert(all.end(), v.begin(), v.end());
  std::stable_sort(all.begin(), all.end(), [](const Row& a, const Row& b) { return a.doc < b.doc; });
  return all;
}

template <typename T>
py::array_t<T> column(size_t n) {
  return py::array_t<T>(static_cast<py::ssize_t>(n));
}

struct DocMatch {
  int64_t doc;
  Match m;
};

py::dict matches(const Scanner& scanner, const TextBatch& batch, int threads) {
  const int workers = Scanner::worker_count(threads, batch.size());
  std::vector<std::vector<DocMatch>> per_worker(workers);
  std::vector<DocMatch> all;
  {
    py::gil_scoped_release release;
    scanner.scan(batch.texts(), workers, [&](int worker, size_t text, const std::vector<Match>& ms) {
      for (const Match& m : ms) per_worker[worker].push_back({static_cast<int64_t>(text), m});
    });
    all = in_doc_order(per_worker);
  }
  auto doc = column<int64_t>(all.size()), start = column<int64_t>(all.size()), end = column<int64_t>(all.size());
  auto pattern = column<int32_t>(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    doc.mutable_at(i) = all[i].doc;
    start.mutable_at(i) = static_cast<int64_t>(all[i].m.start);
    end.mutable_at(i) = static_cast<int64_t>(all[i].m.end);
    pattern.mutable_at(i) = all[i].m.pattern;
  }
  py::dict d;
  d["doc"] = doc;
  d["start"] = start;
  d["end"] = end;
  d["pattern"] = pattern;
  return d;
}

py::dict segment(const Analyzer& analyzer, const TextBatch& batch, int threads) {
  // Each text's steps are stored under its index, so they come out in
  // document order whichever thread analysed the text.
  std::vector<std::vector<Step>> by_text(batch.size());
  {
    py::gil_scoped_release release;
    analyzer.segment(batch.texts(), Scanner::worker_count(threads, batch.size()),
                     [&](size_t text, const StepList& steps) { by_text[text].assign(steps.begin(), steps.end()); });
  }
  size_t n = 0;
  for (const auto& v : by_text) n += v.size();
  auto doc = column<int64_t>(n), start = column<int64_t>(n), end = column<int64_t>(n);
  auto label = column<int32_t>(n);
  auto flags = column<uint32_t>(n);
  size_t i = 0;
  for (size_t t = 0; t < by_text.size(); ++t)
    for (const Step& st : by_text[t]) {
      doc.mutable_at(i) = static_cast<int64_t>(t);
      start.mutable_at(i) = static_cast<int64_t>(st.start);
      end.mutable_at(i) = static_cast<int64_t>(st.end);
      label.mutable_at(i) = st.label;
      flags.mutable_at(i) = st.flags;
      ++i;
    }
  py::dict d;
  d["doc"] = doc;
  d["start"] = start;
  d["end"] = end;
  d["label"] = label;
  d["flags"] = flags;
  return d;
}

py::dict analyze(const Analyzer& analyzer, const TextBatch& batch, int threads) {
  const size_t n = batch.size();
  const size_t C = static_cast<size_t>(analyzer.n_categories()), L = C + 1;
  py::dict d;
  auto i64 = [&](const char* name) { auto a = column<int64_t>(n); d[name] = a; return a.mutable_data(); };
  auto f64 = [&](const char* name) { auto a = column<double>(n); d[name] = a; return a.mutable_data(); };
  MetricColumns out{};
  out.n_bytes = i64("n_bytes");
  out.n_words = i64("n_words");
  out.n_steps = i64("n_steps");
  out.longest_branch_run = i64("longest_branch_run");
  out.first_answer_offset = i64("first_answer_offset");
  out.n_distinct_answers = i64("n_distinct_answers");
  out.branch_step_ratio = f64("branch_step_ratio");
  out.markers_per_1k_words = f64("markers_per_1k_words");
  out.repetition = f64("repetition");
  out.tail_after_first_answer = f64("tail_after_first_answer");
  py::array_t<int64_t> count({C, n}), steps({C, n});
  py::array_t<double> transitions({L * L, n});
  d["count"] = count;
  d["steps"] = steps;
  d["transitions"] = transitions;
  out.count = count.mutable_data();
  out.steps = steps.mutable_data();
  out.transitions = transitions.mutable_data();
  out.rows = n;
  {
    py::gil_scoped_release release;
    analyzer.analyze(batch.texts(), Scanner::worker_count(threads, n), out);
  }
  return d;
}


// Hands a vector to numpy without a copy: the array owns it through a capsule.
template <typename T>
py::array_t<T> owned_array(std::vector<T>&& values) {
  auto* heap = new std::vector<T>(std::move(values));
  py::capsule owner(heap, [](void* v) { delete static_cast<std::vector<T>*>(v); });
  return py::array_t<T>(static_cast<py::ssize_t>(heap->size()), heap->data(), owner);
}

py::dict extract_jsonl(const py::buffer& block, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& offsets,
                       const std::vector<std::string>& keys, size_t max_int_digits) {
  const py::buffer_info info = block.request();
  if (info.itemsize != 1 || info.ndim != 1 || (info.size > 1 && info.strides[0] != 1))
    throw py::value_error("block must be a contiguous 1-d byte buffer");
  if (offsets.ndim() != 1 || offsets.size() < 1) throw py::value_error("offsets must be a 1-d array of n + 1 entries");
  if (keys.empty()) throw py::value_error("keys must name the text field first");
  const int64_t* off = offsets.data();
  const size_t n_lines = static_cast<size_t>(offsets.size() - 1);
  if (off[0] < 0 || off[n_lines] > static_cast<int64_t>(info.size)) throw py::value_error("offsets outside the block");
  for (size_t i = 0; i < n_lines; ++i)
    if (off[i + 1] < off[i]) throw py::value_error("offsets must not decrease");
  jsonl::Extraction result;
  {
    py::gil_scoped_release release;
    result = jsonl::extract(static_cast<const uint8_t*>(info.ptr), off, n_lines, keys, max_int_digits);
  }
  py::list columns;
  for (jsonl::Column& c : result.columns)
    columns.append(py::make_tuple(owned_array(std::move(c.offsets)), owned_array(std::move(c.data)),
                                  owned_array(std::move(c.valid))));
  py::dict d;
  d["status"] = owned_array(std::move(result.status));
  d["think_tagged"] = owned_array(std::move(result.think_tagged));
  d["columns"] = columns;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "cotsieve native engine";
  simd_level();  // a bad COTSIEVE_SIMD fails the import, not a scan in a worker thread

  py::class_<TextBatch>(m, "TextBatch")
      .def_static("from_sequence", &TextBatch::from_sequence, py::arg("items"))
      .def_static("from_arrow_chunks", &TextBatch::from_arrow_chunks, py::arg("chunks"))
      .def("__len__", &TextBatch::size)
      .def_property_readonly("total_bytes", &TextBatch::total_bytes);

  py::class_<Scanner>(m, "Scanner")
      .def(py::init([](const std::vector<PatternTuple>& tuples, int engine) {
             if (engine < 0 || engine > 2) throw py::value_error("engine code out of range");
             auto specs = to_specs(tuples);
             py::gil_scoped_release release;  // compiling 10k patterns takes a moment
             return new Scanner(std::move(specs), static_cast<Engine>(engine));
           }),
           py::arg("patterns"), py::arg("engine") = 0)
      .def_property_readonly("engine",
                             [](const Scanner& s) { return s.engine() == Engine::kPrefilter ? "prefilter" : "dfa"; })
      .def_property_readonly("pattern_count", &Scanner::pattern_count)
      .def_property_readonly("state_count", [](const Scanner& s) { return s.automaton().state_count(); })
      .def("count", &count, py::arg("batch"), py::arg("threads") = 0, py::arg("lanes") = 0)
      .def("matches", &matches, py::arg("batch"), py::arg("threads") = 0);

  py::class_<Analyzer>(m, "Analyzer")
      .def(py::init([](const Scanner& markers, std::vector<int32_t> category_of, int n_categories,
                       int branch_category, int mode) {
             if (mode < 0 || mode > 3) throw py::value_error("step mode code out of range");
             return new Analyzer(markers, std::move(category_of), n_categories, branch_category,
                                 static_cast<StepMode>(mode));
           }),
           py::arg("markers"), py::arg("category_of"), py::arg("n_categories"), py::arg("branch_category"),
           py::arg("mode"), py::keep_alive<1, 2>())
      .def("analyze", &analyze, py::arg("batch"), py::arg("threads") = 0)
      .def("segment", &segment, py::arg("batch"), py::arg("threads") = 0);

  m.def(
      "line_offsets",
      [](const py::buffer& block) {
        const py::buffer_info info = block.request();
        if (info.itemsize != 1 || info.ndim != 1 || (info.size > 1 && info.strides[0] != 1))
          throw py::value_error("block must be a contiguous 1-d byte buffer");
        std::vector<int64_t> offsets;
        {
          py::gil_scoped_release release;
          offsets = jsonl::line_offsets(static_cast<const uint8_t*>(info.ptr), static_cast<size_t>(info.size));
        }
        return owned_array(std::move(offsets));
      },
      py::arg("block"), "Line start offsets of a block, then its size; see csrc/jsonl.h.");
  m.def("extract_jsonl", &extract_jsonl, py::arg("block"), py::arg("offsets"), py::arg("keys"),
        py::arg("max_int_digits") = 0,
        "Decode the text (keys[0]) and carried fields of each JSON line; see csrc/jsonl.h.");
  m.def("prefilter_available", &Prefilter::available);
  m.def(
      "simd_level", [] { return simd_level_name(simd_level()); },
      "The vector paths this process takes: 'avx512', 'avx2' or 'none' (the CPU's best, capped by COTSIEVE_SIMD).");
  m.def("worker_count", &Scanner::worker_count, py::arg("requested"), py::arg("n_texts"));
}
