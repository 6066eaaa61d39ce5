// Native Hyperscan peer for benchmarks/bench_scan.py: counts matches with a
// counting callback on one thread, timing only the scans.
//
// Built by the benchmark at run time against the system library:
//   c++ -O2 -std=c++17 hs_count.cpp -lhs -o hs_count
// Usage: hs_count PATTERNS TEXTS
//   PATTERNS: one pattern per line, "<caseless> <length> <expression>":
//             caseless is 1 for HS_FLAG_CASELESS (ASCII letters only, as in
//             cotsieve), length the byte length of the literal body (a match
//             starts that far before its end, whatever prefix an anchor adds).
//   TEXTS:    texts as records of a little-endian uint64 length and the bytes.
// Then, one command per line on stdin:
//   all      count every match Hyperscan reports (overlapping ones included)
//   exact    keep the leftmost-longest, non-overlapping matches (lowest
//            index on ties), as cotsieve counts them
// Each command answers "<wall seconds> <CPU seconds> <matches>" on stdout,
// the seconds those of the scans alone.
#include <hs/hs.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Patterns {
  std::vector<std::string> expressions;
  std::vector<unsigned> flags, ids;
  std::vector<uint64_t> lengths;
};

struct Occurrence {
  uint64_t start, end;
  unsigned id;
};

[[noreturn]] void die(const std::string& why) {
  std::cerr << "hs_count: " << why << "\n";
  std::exit(1);
}

Patterns read_patterns(const char* path) {
  std::ifstream in(path);
  if (!in) die(std::string("cannot read ") + path);
  Patterns p;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    unsigned caseless = 0;
    uint64_t length = 0;
    std::string expression;
    // The expression is the rest of the line: it may hold spaces.
    if (!(fields >> caseless >> length) || fields.get() != ' ' || !std::getline(fields, expression) ||
        expression.empty())
      die("bad pattern line: " + line);
    p.ids.push_back(static_cast<unsigned>(p.expressions.size()));
    p.expressions.push_back(expression);
    p.flags.push_back(caseless ? HS_FLAG_CASELESS : 0);
    p.lengths.push_back(length);
  }
  return p;
}

std::vector<std::string> read_texts(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die(std::string("cannot read ") + path);
  std::vector<std::string> texts;
  uint64_t size = 0;
  while (in.read(reinterpret_cast<char*>(&size), sizeof size)) {
    std::string text(size, '\0');
    if (!in.read(text.data(), static_cast<std::streamsize>(size))) die("truncated texts file");
    texts.push_back(std::move(text));
  }
  return texts;
}

hs_database_t* compile(const Patterns& p) {
  std::vector<const char*> expressions;
  for (const std::string& e : p.expressions) expressions.push_back(e.c_str());
  hs_database_t* db = nullptr;
  hs_compile_error_t* error = nullptr;
  if (hs_compile_multi(expressions.data(), p.flags.data(), p.ids.data(), static_cast<unsigned>(expressions.size()),
                       HS_MODE_BLOCK, nullptr, &db, &error) != HS_SUCCESS)
    die(std::string("compile failed: ") + error->message);
  return db;
}

int count_one(unsigned, unsigned long long, unsigned long long, unsigned, void* context) {
  ++*static_cast<uint64_t*>(context);
  return 0;
}

struct Collector {
  const std::vector<uint64_t>* lengths;
  std::vector<Occurrence> found;
};

int collect(unsigned id, unsigned long long, unsigned long long to, unsigned, void* context) {
  auto* c = static_cast<Collector*>(context);
  c->found.push_back({to - (*c->lengths)[id], to, id});
  return 0;
}

// cotsieve's rule (docs/semantics.md): leftmost start, then longest, then
// lowest index; the next match starts at or after the previous end.
uint64_t leftmost_longest(std::vector<Occurrence>& found) {
  std::sort(found.begin(), found.end(), [](const Occurrence& a, const Occurrence& b) {
    if (a.start != b.start) return a.start < b.start;
    if (a.end != b.end) return a.end > b.end;
    return a.id < b.id;
  });
  uint64_t kept = 0, cursor = 0;
  for (const Occurrence& o : found) {
    if (o.start < cursor) continue;
    ++kept;
    cursor = o.end;
  }
  return kept;
}

void scan(const hs_database_t* db, hs_scratch_t* scratch, const std::string& text, match_event_handler on_match,
          void* context) {
  if (hs_scan(db, text.data(), static_cast<unsigned>(text.size()), 0, scratch, on_match, context) != HS_SUCCESS)
    die("scan failed");
}

uint64_t count_all(const hs_database_t* db, hs_scratch_t* scratch, const std::vector<std::string>& texts) {
  uint64_t matches = 0;
  for (const std::string& t : texts) scan(db, scratch, t, count_one, &matches);
  return matches;
}

uint64_t count_exact(const hs_database_t* db, hs_scratch_t* scratch, const std::vector<std::string>& texts,
                     const std::vector<uint64_t>& lengths) {
  uint64_t matches = 0;
  Collector c{&lengths, {}};
  for (const std::string& t : texts) {
    c.found.clear();
    scan(db, scratch, t, collect, &c);
    matches += leftmost_longest(c.found);
  }
  return matches;
}

double cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) die("usage: hs_count PATTERNS TEXTS");
  const Patterns patterns = read_patterns(argv[1]);
  const std::vector<std::string> texts = read_texts(argv[2]);
  hs_database_t* db = compile(patterns);
  hs_scratch_t* scratch = nullptr;
  if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) die("cannot allocate scratch");
  std::string command;
  while (std::getline(std::cin, command)) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    uint64_t matches = 0;
    if (command == "all") {
      matches = count_all(db, scratch, texts);
    } else if (command == "exact") {
      matches = count_exact(db, scratch, texts, patterns.lengths);
    } else {
      die("unknown command: " + command);
    }
    const double cpu = cpu_seconds() - cpu_start;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("%.9f %.9f %llu\n", took.count(), cpu, static_cast<unsigned long long>(matches));
    std::fflush(stdout);
  }
  hs_free_scratch(scratch);
  hs_free_database(db);
  return 0;
}
