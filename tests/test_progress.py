"""The progress line: its text from counters, where it shows, and how far
into each stored file a chunk reaches (the pass names of a two-pass filter
are checked in test_cli.py)."""

import gzip
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from cotsieve.cli.progress import StatusLine, pass_label, profile_line, progress_line
from cotsieve.io import ReadOptions, read_corpus


@pytest.mark.parametrize(
    ("counters", "line"),
    [
        (("pass 1/2: measuring", 0, 0, 1_000_000, 0.0), "pass 1/2: measuring  0 traces  0.0 of 1.0 MB (0%)"),
        (("pass 1/2: measuring", 3_000, 250_000_000, 1_000_000_000, 50.0),
         "pass 1/2: measuring  3,000 traces  250.0 of 1,000.0 MB (25%)  5.0 MB/s  ETA 0:02:30"),
        (("pass 2/2: writing kept", 9, 999_000, 1_000_000, 3_600.0),
         "pass 2/2: writing kept  9 traces  1.0 of 1.0 MB (100%)  0.0 MB/s  ETA 0:00:04"),
        (("measuring", 10, 1_000_000, 1_000_000, 2.0), "measuring  10 traces  1.0 of 1.0 MB (100%)  0.5 MB/s"),
        (("scanning", 5, 2_500_000, None, 2.0), "scanning  5 traces  2.5 MB  1.2 MB/s"),  # a stream: no total
    ],
)
def test_the_line_from_its_counters(counters, line):
    assert progress_line(*counters) == line


def test_pass_labels_and_the_profile_line():
    assert pass_label("writing kept", 2, 2) == "pass 2/2: writing kept"
    assert pass_label("measuring", 1, 1) == "measuring"
    assert profile_line(3, 4_000, 8.0) == "profiling  3 traces  4,000 tokens  500 tokens/s  0:00:08"
    assert profile_line(0, 0, 0.0) == "profiling  0 traces  0 tokens  -- tokens/s  0:00:00"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_one_line_rewritten_and_a_log_gets_lines_now_and_then():
    now = [0.0]
    terminal = _Terminal()
    status = StatusLine(quiet=False, stream=terminal, clock=lambda: now[0])
    status.show("a")
    status.show("b")  # too soon after "a"
    now[0] = 1.0
    status.show("c")
    status.close("d")
    assert terminal.getvalue() == "\ra\x1b[K\rc\x1b[K\rd\x1b[K\n"

    log = io.StringIO()
    assert not StatusLine(quiet=False, stream=log).on  # not a terminal, not asked: silent
    status = StatusLine(quiet=False, asked=True, stream=log, clock=lambda: now[0])
    status.show("e")
    now[0] = 2.0
    status.show("f")  # a log gets a line every few seconds
    status.close("g")
    assert log.getvalue() == "e\ng\n"
    assert not StatusLine(quiet=True, asked=True, stream=_Terminal()).on


def _lines(n):
    """Lines of random hex: they compress to about half, so a compressed file
    of 4 MB still spans several of the zstd reader's 1 MiB reads."""
    rng = random.Random(0)
    return b"".join(json.dumps({"text": f"{rng.getrandbits(4096):x}"}).encode() + b"\n" for _ in range(n))


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_chunks_tell_how_far_into_the_stored_file_they_reach(tmp_path, suffix):
    data = _lines(4000)
    path = tmp_path / f"in{suffix}"
    stored = {".jsonl": data, ".jsonl.gz": gzip.compress(data),
              ".jsonl.zst": zstandard.ZstdCompressor().compress(data)}[suffix]
    path.write_bytes(stored)
    chunks = list(read_corpus(str(path), ReadOptions(block_bytes=256 << 10)))
    positions = [c.position for c in chunks]
    assert len(chunks) >= 3 and all(p is not None for p in positions)
    assert positions == sorted(positions) and positions[-1] == len(stored)
    assert len(set(positions)) >= 3  # reading moves through the file, not to its end at once
    if suffix == ".jsonl":  # uncompressed: reading is past a block's end by the start of the next line at most
        ends = [sum(c.n_bytes for c in chunks[:i + 1]) for i in range(len(chunks))]
        longest = max(len(line) + 1 for line in data.split(b"\n"))
        assert all(0 <= p - e < longest for p, e in zip(positions, ends))


def test_parquet_chunks_reach_the_share_of_rows_read(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [f"trace {i}." for i in range(3000)]}), path)
    chunks = list(read_corpus(str(path)))
    size = path.stat().st_size
    rows = 0
    for chunk in chunks:
        rows += len(chunk)
        assert chunk.position == size * rows // 3000


@pytest.mark.parametrize("shards_at_once", [1, 2])
def test_the_bytes_done_run_across_the_files_of_a_run(tmp_path, shards_at_once):
    """Read one after another or at once, the files' bytes done add up, and never go back."""
    from cotsieve.cli.progress import CorpusProgress
    from cotsieve.pipeline import CurateOptions, analyze_corpus

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    first.write_bytes(_lines(300))
    second.write_bytes(gzip.compress(_lines(600)))
    log, ticks = io.StringIO(), iter(range(0, 10_000, 10))  # every line is due: 10 s apart
    status = StatusLine(quiet=False, asked=True, stream=log, clock=lambda: next(ticks))
    with CorpusProgress(status) as progress:
        analyze_corpus([str(first), str(second)], tmp_path / "out",
                       CurateOptions(block_bytes=64 << 10, shards_at_once=shards_at_once), progress)
    done = [float(line.split("traces  ")[1].split(" of ")[0]) for line in log.getvalue().splitlines()]
    total = (first.stat().st_size + second.stat().st_size) / 1e6
    assert done == sorted(done) and done[-1] == pytest.approx(total, abs=0.05)
    if shards_at_once == 1:  # the first file, read to its end before the second starts
        assert any(abs(d - first.stat().st_size / 1e6) < 0.05 for d in done)
    assert len(done) > 4


def test_a_limited_run_does_not_claim_to_have_read_its_whole_input(tmp_path):
    from cotsieve.cli.progress import CorpusProgress
    from cotsieve.io import Selection
    from cotsieve.pipeline import CurateOptions, analyze_corpus

    path = tmp_path / "a.jsonl"
    path.write_bytes(_lines(3000))
    log, ticks = io.StringIO(), iter(range(0, 10_000, 10))
    status = StatusLine(quiet=False, asked=True, stream=log, clock=lambda: next(ticks))
    with CorpusProgress(status, reads_to_the_end=False) as progress:
        analyze_corpus(str(path), tmp_path / "out", CurateOptions(block_bytes=16 << 10, select=Selection(limit=5)),
                       progress)
    last = log.getvalue().splitlines()[-1]
    assert "5 traces" in last and "(100%)" not in last
