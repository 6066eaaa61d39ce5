"""Peer scanners, built from the same pattern set, and the corpora they run on.

Each peer is a callable ``scan(texts: list[bytes]) -> int`` that returns a
match count, so every engine is timed doing comparable work on the same bytes:

- ``re``: one Python alternation, longest alternative first (so leftmost-first
  acts as leftmost-longest), with the same word-boundary lookarounds; anchors
  are checked on each match in Python, as a hand-written script would.
- ``native hyperscan``: the C++ driver in ``native/hs_count.cpp``, compiled
  here against the system's ``libhs`` (``libhyperscan-dev``), one thread, a
  counting callback, timing only the scans (the driver's own clock). Same
  case and boundary rules; anchors written as prefixes (``hyperscan_expression``).
  Hyperscan reports every match, overlapping ones included; the ``exact``
  row adds cotsieve's leftmost-longest selection in the callback.
- ``hyperscan binding``: the same expressions through the Python binding, a
  Python callback per match.
- ``polars`` (one thread): ``str.count_matches`` with one alternation
  (ASCII ``\\b``, longest first, anchors as prefixes) and
  ``str.find_many`` (Aho-Corasick, ASCII case folding, no boundaries).
- ``duckdb`` (one thread): ``regexp_extract_all`` (RE2) with the alternation.
- ``ahocorasick_rs`` and ``pyahocorasick``: leftmost-longest (ahocorasick_rs)
  or all matches (pyahocorasick, which needs ``str``, so decoding is timed
  too) over the lower-cased text, no boundary checks.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import io
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import cotsieve

Scan = Callable[[list[bytes]], int]

_WORD = rb"[A-Za-z0-9_]"


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` wall-clock runs: the least disturbed by other work."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


class Seconds(float):
    """A callable's own measure of its work (wall seconds; ``cpu``: CPU
    seconds), for a row timed outside this process: the native driver times
    only its scans, not the pipe."""

    cpu: float


def best_seconds_interleaved(fns: dict[str, Callable[[], object]], repeat: int,
                             clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """The fastest of ``repeat`` runs of each callable, taken in turns (one run
    of each, then the next round), so that a change in the machine's speed
    during the measurement touches every row alike and the ratios hold. A
    callable that returns ``Seconds`` is timed by that value. With
    ``clock=time.process_time`` the rows are timed by CPU time, which other
    work on a shared machine disturbs less (for one-thread rows only)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = clock()
            result = fn()
            if isinstance(result, Seconds):
                took = result.cpu if clock is time.process_time else float(result)
            else:
                took = clock() - start
            best[name] = min(best[name], took)
    return best


def shared_data_dir() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _lines(path: Path) -> Iterator[str]:
    if path.suffix == ".zst":
        import zstandard

        with open(path, "rb") as raw:
            yield from io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
    else:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            yield from f


def real_traces(folder: Path | None = None) -> list[bytes]:
    """The ``text`` field of every trace in the shared real-data files."""
    folder = folder or shared_data_dir()
    texts = []
    for path in sorted(folder.glob("*.jsonl.*")):
        texts.extend(json.loads(line)["text"].encode("utf-8") for line in _lines(path) if line.strip())
    return texts


def sample_traces() -> list[bytes]:
    """The synthetic sample corpus shipped with the package."""
    from importlib import resources

    data = resources.files("cotsieve") / "data" / "sample_traces.jsonl.gz"
    with gzip.open(io.BytesIO(data.read_bytes()), "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"].encode("utf-8") for line in f]


def _checked_sides(p: cotsieve.Pattern) -> tuple[bool, bool]:
    """Which ends of ``p`` need a word boundary: those its boundary mode
    names whose byte is a word byte (docs/semantics.md)."""
    word = re.compile(_WORD)
    start = p.boundary in ("word", "start") and word.match(p.utf8[:1]) is not None
    end = p.boundary in ("word", "end") and word.match(p.utf8[-1:]) is not None
    return start, end


def _boundary_regex(p: cotsieve.Pattern) -> bytes:
    start, end = _checked_sides(p)
    return (rb"(?<!" + _WORD + rb")" if start else b"") + re.escape(p.utf8) + (rb"(?!" + _WORD + rb")" if end else b"")


# Anchors as a prefix of the match: Hyperscan, RE2 and Rust's regex have no
# lookbehind. The prefix's bytes become part of the reported match.
_LINE_PREFIX = rb"(?:^|\n)[ \t*#>\-]*"
_ANCHOR_PREFIX = {
    "any": b"",
    "line_start": _LINE_PREFIX,
    "sentence_start": rb"(?:" + _LINE_PREFIX + rb"|[.!?:][ \t\r\n]+)",
}


def hyperscan_expression(p: cotsieve.Pattern) -> bytes:
    """``p`` as a Hyperscan expression: ASCII ``\\b`` where cotsieve checks a
    boundary, the anchor as a prefix, every byte but ASCII letters and digits
    written ``\\xHH`` (caseless is the compile flag)."""
    start, end = _checked_sides(p)
    body = b"".join(bytes([c]) if bytes([c]).isalnum() else b"\\x%02x" % c for c in p.utf8)
    return _ANCHOR_PREFIX[p.anchor] + (rb"\b" if start else b"") + body + (rb"\b" if end else b"")


_REGEX_META = set("\\.+*?()|[]{}^$")


def alternation_regex(ps: cotsieve.PatternSet, boundary: str) -> str:
    """One alternation for RE2 (duckdb, ``boundary=r"\\b"``) and Rust's regex
    (polars, ``r"(?-u:\\b)"``, ASCII), longest first so that leftmost-first
    acts as leftmost-longest; ``(?i:...)`` on caseless patterns, anchors as
    prefixes."""
    def one(p: cotsieve.Pattern) -> str:
        start, end = _checked_sides(p)
        body = "".join("\\" + ch if ch in _REGEX_META else ch for ch in p.text)
        body = f"(?i:{body})" if p.case == "insensitive" else body
        return _ANCHOR_PREFIX[p.anchor].decode() + (boundary if start else "") + body + (boundary if end else "")

    return "|".join(one(p) for p in sorted(ps.patterns, key=lambda p: -len(p.utf8)))


def python_re(ps: cotsieve.PatternSet) -> Scan:
    """One alternation per case mode; anchors checked per match."""
    order = sorted(range(len(ps)), key=lambda i: -len(ps.patterns[i].utf8))
    alternation = b"|".join(b"(?P<p%d>%s)" % (i, _boundary_regex(ps.patterns[i])) for i in order)
    rx = re.compile(alternation, re.IGNORECASE)
    anchored = {i: ps.patterns[i].anchor for i in range(len(ps)) if ps.patterns[i].anchor != "any"}
    prefix = re.compile(rb"[ \t*#>-]*\Z")

    def line_start(text: bytes, at: int) -> bool:
        return prefix.match(text, text.rfind(b"\n", 0, at) + 1, at) is not None

    def sentence_start(text: bytes, at: int) -> bool:
        before = text[:at].rstrip(b" \t\r\n")
        return line_start(text, at) or (len(before) < at and before[-1:] in (b".", b"!", b"?", b":"))

    checks = {"line_start": line_start, "sentence_start": sentence_start}

    def scan(texts: list[bytes]) -> int:
        n = 0
        for text in texts:
            for m in rx.finditer(text):
                i = int(m.lastgroup[1:])
                n += i not in anchored or checks[anchored[i]](text, m.start())
        return n

    return scan


def hyperscan_binding_scan(ps: cotsieve.PatternSet) -> Scan:
    """The native driver's expressions through the Python binding: a Python
    callback per match."""
    import hyperscan

    exprs = [hyperscan_expression(p) for p in ps.patterns]
    db = hyperscan.Database()
    db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
               flags=[hyperscan.HS_FLAG_CASELESS if p.case == "insensitive" else 0 for p in ps.patterns])
    scratch = hyperscan.Scratch(db)

    def scan(texts: list[bytes]) -> int:
        count = [0]

        def on_match(pattern_id, start, end, flags, context):
            count[0] += 1

        for text in texts:
            db.scan(text, match_event_handler=on_match, scratch=scratch)
        return count[0]

    return scan


NATIVE_SOURCE = Path(__file__).resolve().parent / "native" / "hs_count.cpp"


@functools.cache
def build_native_hyperscan() -> Path:
    """Compiles the native driver against the system's Hyperscan, once per
    process; ImportError (the benchmark's "skip this row") says what is missing."""
    folder = _scratch_folder()
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        raise ImportError("native hyperscan: no C++ compiler (set CXX)")
    binary = folder / "hs_count"
    build = subprocess.run([compiler, "-O2", "-std=c++17", str(NATIVE_SOURCE), "-lhs", "-o", str(binary)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        raise ImportError("native hyperscan: cannot build against libhs (apt-get install libhyperscan-dev): "
                          + build.stderr.strip().splitlines()[0])
    return binary


def _scratch_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="cotsieve_hs_"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


class NativeHyperscan:
    """The native driver, started once per corpus; each call scans every text
    once and returns the driver's time of the scans alone (``Seconds``)."""

    def __init__(self, ps: cotsieve.PatternSet, command: str) -> None:
        self.binary = build_native_hyperscan()
        self.folder = _scratch_folder()
        (self.folder / "patterns").write_bytes(b"".join(
            b"%d %d %s\n" % (p.case == "insensitive", len(p.utf8), hyperscan_expression(p)) for p in ps.patterns))
        self.command = command
        self.corpus: list[bytes] | None = None
        self.process: subprocess.Popen[str] | None = None
        self.matches = 0

    def _start(self, texts: list[bytes]) -> subprocess.Popen[str]:
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait()
        with open(self.folder / "texts", "wb") as out:
            for t in texts:
                out.write(struct.pack("<Q", len(t)))
                out.write(t)
        self.corpus = texts
        self.process = subprocess.Popen([str(self.binary), str(self.folder / "patterns"), str(self.folder / "texts")],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        atexit.register(self.process.kill)
        return self.process

    def __call__(self, texts: list[bytes]) -> Seconds:
        process = self.process if texts is self.corpus and self.process else self._start(texts)
        process.stdin.write(self.command + "\n")
        process.stdin.flush()
        answer = process.stdout.readline().split()
        if len(answer) != 3:
            raise RuntimeError("the native hyperscan driver stopped; see its message above")
        self.matches = int(answer[2])
        seconds = Seconds(float(answer[0]))
        seconds.cpu = float(answer[1])
        return seconds


def native_hyperscan_scan(ps: cotsieve.PatternSet) -> Scan:
    return NativeHyperscan(ps, "all")


def native_hyperscan_exact_scan(ps: cotsieve.PatternSet) -> Scan:
    return NativeHyperscan(ps, "exact")


def _one_thread_polars():  # type: ignore[no-untyped-def]
    os.environ.setdefault("POLARS_MAX_THREADS", "1")  # read once, when polars is first imported
    import polars

    if polars.thread_pool_size() != 1:
        raise ImportError("polars: imported before POLARS_MAX_THREADS=1 could apply")
    return polars


def polars_count_matches_scan(ps: cotsieve.PatternSet) -> Scan:
    pl = _one_thread_polars()
    rx = alternation_regex(ps, r"(?-u:\b)")
    column = _PolarsColumn(pl)
    return lambda texts: column(texts).str.count_matches(rx).sum()


def polars_find_many_scan(ps: cotsieve.PatternSet) -> Scan:
    pl = _one_thread_polars()
    needles = sorted((p.text for p in ps.patterns), key=lambda t: -len(t.encode()))
    column = _PolarsColumn(pl)
    return lambda texts: column(texts).str.find_many(needles, ascii_case_insensitive=True).list.len().sum()


class _PolarsColumn:
    """The corpus as a polars string Series, converted once, outside the timing."""

    def __init__(self, pl) -> None:  # type: ignore[no-untyped-def]
        self.pl, self.corpus, self.series = pl, None, None

    def __call__(self, texts: list[bytes]):  # type: ignore[no-untyped-def]
        if texts is not self.corpus:
            self.corpus, self.series = texts, self.pl.Series([t.decode("utf-8") for t in texts])
        return self.series


def duckdb_scan(ps: cotsieve.PatternSet) -> Scan:
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    con.execute("SET threads = 1")
    rx = alternation_regex(ps, r"\b")
    loaded: list[object] = [None]

    def scan(texts: list[bytes]) -> int:
        if texts is not loaded[0]:
            table = pa.table({"text": pa.array([t.decode("utf-8") for t in texts], pa.large_string())})
            con.register("corpus", table)
            loaded[0] = texts
        return con.execute("SELECT sum(len(regexp_extract_all(text, ?))) FROM corpus", [rx]).fetchall()[0][0]

    return scan


def ahocorasick_rs_scan(ps: cotsieve.PatternSet) -> Scan:
    import ahocorasick_rs

    ac = ahocorasick_rs.BytesAhoCorasick([p.utf8.lower() for p in ps.patterns],
                                         matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)
    return lambda texts: sum(len(ac.find_matches_as_indexes(t.lower())) for t in texts)


def pyahocorasick_scan(ps: cotsieve.PatternSet) -> Scan:
    import ahocorasick

    # pyahocorasick matches str, so each text is decoded inside the timing.
    auto = ahocorasick.Automaton()
    for i, p in enumerate(ps.patterns):
        auto.add_word(p.utf8.decode("utf-8", "surrogateescape").lower(), i)
    auto.make_automaton()
    return lambda texts: sum(
        sum(1 for _ in auto.iter(t.decode("utf-8", "surrogateescape").lower())) for t in texts
    )


PEERS: dict[str, Callable[[cotsieve.PatternSet], Scan]] = {
    "python re": python_re,
    "native hyperscan (all matches, counting callback)": native_hyperscan_scan,
    "native hyperscan + leftmost-longest (cotsieve's counts)": native_hyperscan_exact_scan,
    "hyperscan binding (Python callback per match)": hyperscan_binding_scan,
    "polars count_matches (one alternation, 1 thread)": polars_count_matches_scan,
    "polars find_many (no boundaries, 1 thread)": polars_find_many_scan,
    "duckdb regexp_extract_all (1 thread)": duckdb_scan,
    "ahocorasick_rs": ahocorasick_rs_scan,
    "pyahocorasick": pyahocorasick_scan,
}
