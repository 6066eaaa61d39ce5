// Python bindings. Every scan releases the GIL; results come back as numpy
// arrays that Python wraps into Arrow without copying.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "analyzer.h"
#include "cpu.h"
#include "jsonl.h"
#include "parallel.h"
#include "scanner.h"
#include "text_batch.h"

namespace py = pybind11;
using namespace cotsieve;

namespace {

py::array_t<uint32_t> count(const Scanner& scanner, const TextBatch& batch, int threads, int lanes) {
  const size_t n = batch.size(), p = scanner.pattern_count();
  py::array_t<uint32_t> out({n, p});
  uint32_t* counts = out.mutable_data();
  std::fill(counts, counts + n * p, 0u);
  {
    py::gil_scoped_release release;
    scanner.scan(batch.texts(), worker_count(threads, n),
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
  const int workers = worker_count(threads, batch.size());
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
    analyzer.segment(batch.texts(), worker_count(threads, batch.size()),
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

// The metric arrays in kMetricFields order, each [columns, rows].
py::list analyze(const Analyzer& analyzer, const TextBatch& batch, int threads) {
  const size_t n = batch.size(), C = static_cast<size_t>(analyzer.n_categories());
  py::list arrays;
  MetricColumns out{};
  out.rows = n;
  for (size_t m = 0; m < kMetricCount; ++m) {
    const MetricField& field = kMetricFields[m];
    const size_t width = metric_width(field.shape, C);
    if (field.type == MetricType::kInt64) {
      py::array_t<int64_t> a({width, n});
      out.data[m] = a.mutable_data();
      arrays.append(a);
    } else {
      py::array_t<double> a({width, n});
      out.data[m] = a.mutable_data();
      arrays.append(a);
    }
  }
  {
    py::gil_scoped_release release;
    analyzer.analyze(batch.texts(), worker_count(threads, n), out);
  }
  return arrays;
}

// Hands a vector to numpy without a copy: the array owns it through a capsule.
template <typename T, typename Allocator>
py::array_t<T> owned_array(std::vector<T, Allocator>&& values) {
  using Vector = std::vector<T, Allocator>;
  auto* heap = new Vector(std::move(values));
  py::capsule owner(heap, [](void* v) { delete static_cast<Vector*>(v); });
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

// A Python enum with `values`, in order; `extra` goes to py::enum_ (a
// docstring, py::arithmetic()).
template <typename E, typename... Extra>
void bind_enum(py::module_& m, const char* name, std::initializer_list<std::pair<const char*, E>> values,
               const Extra&... extra) {
  py::enum_<E> e(m, name, extra...);
  for (const auto& [value_name, value] : values) e.value(value_name, value);
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

  bind_enum<Engine>(m, "Engine", {{"AUTO", Engine::kAuto}, {"DFA", Engine::kDfa}, {"PREFILTER", Engine::kPrefilter}},
                    "How a Scanner finds matches; see csrc/scanner.h.");
  bind_enum<Anchor>(m, "Anchor",
                    {{"ANY", Anchor::Any}, {"LINE_START", Anchor::LineStart}, {"SENTENCE_START", Anchor::SentenceStart}},
                    "Where a pattern's match must start; see docs/semantics.md.");
  bind_enum<StepMode>(m, "StepMode",
                      {{"PARAGRAPH", StepMode::kParagraph}, {"LINE", StepMode::kLine},
                       {"SENTENCE", StepMode::kSentence}, {"MARKER", StepMode::kMarker}},
                      "Where steps are cut; see docs/metrics.md.");
  // Arithmetic, so that a status array compares with int(status).
  bind_enum<jsonl::LineStatus>(
      m, "LineStatus",
      {{"PARSED", jsonl::kParsed}, {"BLANK", jsonl::kBlank}, {"NEEDS_FULL_PARSER", jsonl::kNeedsFullParser}},
      py::arithmetic(), "The outcome of extract_jsonl for one line.");
  bind_enum<MetricShape>(m, "MetricShape",
                         {{"PER_TEXT", MetricShape::kPerText}, {"PER_CATEGORY", MetricShape::kPerCategory},
                          {"PER_LABEL_PAIR", MetricShape::kPerLabelPair}},
                         "How many columns a metric has.");
  bind_enum<MetricType>(m, "MetricType", {{"INT64", MetricType::kInt64}, {"FLOAT64", MetricType::kFloat64}},
                        "A metric's value type; a float64 NaN is null.");

  py::class_<MetricField>(m, "MetricField", "One metric of Analyzer.analyze; see csrc/analyzer_metrics.h.")
      .def_property_readonly("name", [](const MetricField& f) { return std::string(f.name); })
      .def_readonly("shape", &MetricField::shape)
      .def_readonly("type", &MetricField::type)
      .def("__repr__", [](const MetricField& f) { return "<MetricField " + std::string(f.name) + ">"; });
  py::tuple fields(static_cast<size_t>(kMetricCount));
  for (size_t i = 0; i < kMetricCount; ++i) fields[i] = py::cast(kMetricFields[i], py::return_value_policy::reference);
  m.attr("METRIC_FIELDS") = fields;

  py::class_<PatternSpec>(m, "PatternSpec", "One compiled pattern's bytes and matching rules.")
      .def(py::init([](const py::bytes& text, int32_t category, bool case_sensitive, bool boundary_start,
                       bool boundary_end, Anchor anchor) {
             return PatternSpec{std::string(text), category, case_sensitive, boundary_start, boundary_end, anchor};
           }),
           py::arg("text"), py::arg("category"), py::arg("case_sensitive") = false, py::arg("boundary_start") = true,
           py::arg("boundary_end") = true, py::arg("anchor") = Anchor::Any)
      .def_property_readonly("text", [](const PatternSpec& p) { return py::bytes(p.bytes); })
      .def_readonly("category", &PatternSpec::category)
      .def_readonly("case_sensitive", &PatternSpec::case_sensitive)
      .def_readonly("boundary_start", &PatternSpec::boundary_start)
      .def_readonly("boundary_end", &PatternSpec::boundary_end)
      .def_readonly("anchor", &PatternSpec::anchor);

  py::class_<Scanner>(m, "Scanner")
      .def(py::init([](std::vector<PatternSpec> specs, Engine engine) {
             py::gil_scoped_release release;  // compiling 10k patterns takes a moment
             return new Scanner(std::move(specs), engine);
           }),
           py::arg("patterns"), py::arg("engine") = Engine::kAuto)
      .def_property_readonly("engine", &Scanner::engine)
      .def_property_readonly("pattern_count", &Scanner::pattern_count)
      .def_property_readonly("state_count", [](const Scanner& s) { return s.automaton().state_count(); })
      .def("count", &count, py::arg("batch"), py::arg("threads") = 0, py::arg("lanes") = 0)
      .def("matches", &matches, py::arg("batch"), py::arg("threads") = 0);

  py::class_<Analyzer>(m, "Analyzer")
      .def(py::init<const Scanner&, int, int, int, StepMode>(), py::arg("markers"), py::arg("n_categories"),
           py::arg("branch_category"), py::arg("hesitate_category"), py::arg("mode"), py::keep_alive<1, 2>())
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
}
