"""Peer scanners, built from the same pattern set, and the corpora they run on.

Each peer is a callable ``scan(texts: list[bytes]) -> int`` that returns a
match count, so every engine is timed doing comparable work on the same bytes:

- ``re``: one Python alternation, longest alternative first (so leftmost-first
  acts as leftmost-longest), with the same word-boundary lookarounds; anchors
  are checked on each match in Python, as a hand-written script would.
- ``hyperscan``: ``\\b`` and caseless per pattern, a Python callback per match
  (anchors are not expressed; Hyperscan reports overlapping matches).
- ``ahocorasick_rs`` and ``pyahocorasick``: leftmost-longest (ahocorasick_rs)
  or all matches (pyahocorasick, which needs ``str``, so decoding is timed
  too) over the lower-cased text, no boundary checks.
"""

from __future__ import annotations

import gzip
import io
import json
import re
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


def best_seconds_interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """The fastest of ``repeat`` runs of each callable, taken in turns (one run
    of each, then the next round), so that a change in the machine's speed
    during the measurement touches every row alike and the ratios hold."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
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


def _boundary_regex(p: cotsieve.Pattern) -> bytes:
    body = re.escape(p.utf8)
    word = re.compile(_WORD)
    if p.boundary in ("word", "start") and word.match(p.utf8[:1]):
        body = rb"(?<!" + _WORD + rb")" + body
    if p.boundary in ("word", "end") and word.match(p.utf8[-1:]):
        body = body + rb"(?!" + _WORD + rb")"
    return body


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


def hyperscan_scan(ps: cotsieve.PatternSet) -> Scan:
    import hyperscan

    exprs = [rb"\b" + re.escape(p.utf8) + rb"\b" for p in ps.patterns]
    db = hyperscan.Database()
    db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
               flags=[hyperscan.HS_FLAG_CASELESS] * len(exprs))
    scratch = hyperscan.Scratch(db)

    def scan(texts: list[bytes]) -> int:
        count = [0]

        def on_match(pattern_id, start, end, flags, context):
            count[0] += 1

        for text in texts:
            db.scan(text, match_event_handler=on_match, scratch=scratch)
        return count[0]

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
    "hyperscan": hyperscan_scan,
    "ahocorasick_rs": ahocorasick_rs_scan,
    "pyahocorasick": pyahocorasick_scan,
}
