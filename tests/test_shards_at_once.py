"""Several JSON Lines shards read at once (``shards_at_once``), in one pass
and in both passes of a rule over the whole corpus: the outputs are byte for
byte those of reading the shards one after another, whichever shard finishes
first; a failure is raised on the record a one-after-another run fails on;
the parts set aside for shards ahead of their turn never outlive the run."""

import gzip
import json
import os
import subprocess
import sys
import threading
from dataclasses import replace

import pyarrow.parquet as pq
import pytest
import zstandard

from cotsieve import pipeline
from cotsieve.errors import OutputWriteError
from cotsieve.io import BadInputError, ReadOptions, Selection, Source, resolve_inputs, shard_lanes
from cotsieve.pipeline import CurateOptions, analyze_corpus, filter_corpus, shards_at_once
from cotsieve.rules import parse_rule
from cotsieve.testing import generate_traces

RULE = [parse_rule("branch_step_ratio <= 0.3")]
TWO_PASS_RULE = [parse_rule("drop-top 10% branch_step_ratio")]
COMPRESS = {".jsonl": lambda data: data, ".jsonl.gz": gzip.compress,
            ".jsonl.zst": lambda data: zstandard.ZstdCompressor().compress(data)}


def write_shards(folder, sizes, suffix=".jsonl.gz", bad=()):
    """Shards of ``sizes`` traces each (the first the largest, so later ones
    finish ahead of their turn); ``bad`` holds (shard, line) pairs made malformed."""
    folder.mkdir()
    traces = iter(generate_traces(sum(sizes), seed=3))
    for shard, size in enumerate(sizes):
        lines = [json.dumps(next(traces)).encode() + b"\n" for _ in range(size)]
        for where in (line for s, line in bad if s == shard):
            lines[where] = b'{"text": "cut\n'
        if shard == 1:
            lines[3] = b"\n"  # an empty line, set aside under either on_error
        (folder / f"s{shard}{suffix}").write_bytes(COMPRESS[suffix](b"".join(lines)))
    return folder


def outputs_of(out):
    kept = sorted(out.glob("kept.*"))
    return {"kept": kept[0].read_bytes() if kept else None, "metrics": pq.read_table(out / "metrics.parquet"),
            "metrics bytes": (out / "metrics.parquet").read_bytes(),
            "rejected": (out / "rejected.jsonl").read_bytes(), "files": sorted(p.name for p in out.iterdir())}


def same_outputs(a, b):
    """The same files, byte for byte (the metrics compared as a table too, for a readable failure)."""
    same_files = all(a[k] == b[k] for k in ("kept", "metrics bytes", "rejected", "files"))
    return a["metrics"].equals(b["metrics"]) and same_files


def first_shard_last(monkeypatch):
    """Hold shard 0's chunks back until shard 1 is read to its end, so that
    shard 1 is read ahead of its turn; the parts appended are listed."""
    from cotsieve.io import lanes

    read_jsonl, second_read = lanes.read_jsonl, threading.Event()

    def reordered(source, options):
        if source.name.endswith(tuple(f"s0{suffix}" for suffix in COMPRESS)):
            second_read.wait(30)
        try:
            yield from read_jsonl(source, options)
        finally:  # read to its end, or stopped by a failed run
            if source.name.endswith(tuple(f"s1{suffix}" for suffix in COMPRESS)):
                second_read.set()

    monkeypatch.setattr(lanes, "read_jsonl", reordered)
    appended = []
    append = pipeline._ShardParts.append

    def counted(self):
        appended.append(self)
        append(self)

    monkeypatch.setattr(pipeline._ShardParts, "append", counted)
    return appended


@pytest.mark.parametrize(("suffix", "lanes"), [(".jsonl.gz", 2), (".jsonl", 3), (".jsonl.zst", 5)])
@pytest.mark.parametrize("rules", [RULE, TWO_PASS_RULE], ids=["one pass", "two passes"])
def test_outputs_are_those_of_reading_one_shard_after_another(tmp_path, monkeypatch, suffix, lanes, rules):
    inputs = write_shards(tmp_path / "in", [60, 12, 25, 8, 30], suffix, bad=[(2, 4), (4, 0)])
    options = CurateOptions(on_error="skip", block_bytes=4096, fields=("id",))
    one = filter_corpus(str(inputs), tmp_path / "one", rules, options)
    appended = first_shard_last(monkeypatch)
    several = filter_corpus(str(inputs), tmp_path / "several", rules,
                            CurateOptions(on_error="skip", block_bytes=4096, fields=("id",), shards_at_once=lanes))
    assert appended, "some shard was read ahead of its turn, and its parts appended"
    assert same_outputs(outputs_of(tmp_path / "several"), outputs_of(tmp_path / "one"))
    assert (several.read, several.kept, several.dropped, several.rejected) == \
        (one.read, one.kept, one.dropped, one.rejected) and several.balanced
    assert list(several.rejected_by_reason.items()) == list(one.rejected_by_reason.items())
    assert list(several.dropped_by_rule.items()) == list(one.dropped_by_rule.items())
    assert several.rules == one.rules  # a percentile rule's cutoff too
    # The metrics name every record of every shard once, in the inputs' order.
    ids = outputs_of(tmp_path / "several")["metrics"].column("record_id").to_pylist()
    order = [(name, int(line)) for name, line in (i.rsplit(":", 1) for i in ids)]
    assert order == sorted(order) and len(set(ids)) == len(ids)


def test_analyze_reads_shards_at_once_too(tmp_path):
    inputs = write_shards(tmp_path / "in", [40, 10, 20])
    analyze_corpus(str(inputs), tmp_path / "one", CurateOptions(block_bytes=4096, on_error="skip"))
    analyze_corpus(str(inputs), tmp_path / "two", CurateOptions(block_bytes=4096, on_error="skip", shards_at_once=3))
    assert same_outputs(outputs_of(tmp_path / "two"), outputs_of(tmp_path / "one"))


def test_a_failure_is_raised_on_the_record_a_run_in_order_fails_on(tmp_path, monkeypatch):
    """Shard 1's bad record is read before shard 0's, which comes first in order."""
    inputs = write_shards(tmp_path / "in", [60, 10, 10, 10], bad=[(0, 55), (1, 1)])
    first_shard_last(monkeypatch)
    errors = []
    for lanes in (1, 4):
        with pytest.raises(BadInputError) as caught:
            filter_corpus(str(inputs), tmp_path / f"out{lanes}", RULE,
                          CurateOptions(block_bytes=4096, shards_at_once=lanes))
        errors.append(str(caught.value))
        assert not (tmp_path / f"out{lanes}").exists() or not any((tmp_path / f"out{lanes}").iterdir())
    assert errors[0] == errors[1] and "s0.jsonl.gz:56" in errors[0]


def test_a_shard_that_cannot_be_read_fails_the_run_at_its_turn_and_leaves_nothing(tmp_path, monkeypatch):
    from cotsieve.io import lanes

    inputs = write_shards(tmp_path / "in", [60, 10, 10, 10])
    read_jsonl = lanes.read_jsonl

    def failing(source, options):
        if source.name.endswith("s2.jsonl.gz"):
            raise BadInputError(f"{source.name}: cannot read: disk gone")
        return read_jsonl(source, options)

    monkeypatch.setattr(lanes, "read_jsonl", failing)
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match="s2.jsonl.gz: cannot read"):
        filter_corpus(str(inputs), out, RULE, CurateOptions(block_bytes=4096, shards_at_once=3))
    assert not out.exists() or not any(out.iterdir())  # no output, and no part left behind


@pytest.mark.parametrize("tail_bytes", [0, 30_000, 10**9])
def test_pass_two_takes_the_last_blocks_of_pass_one_from_memory(tmp_path, monkeypatch, tail_bytes):
    """Whatever pass 1 holds of which shard, the outputs are those of a run
    reading everything in order, and pass 2 reads from the files only the rest."""
    inputs = write_shards(tmp_path / "in", [40, 12, 30, 8], bad=[(2, 4)])
    options = CurateOptions(on_error="skip", block_bytes=4096)
    filter_corpus(str(inputs), tmp_path / "in-order", TWO_PASS_RULE, options)
    monkeypatch.setattr(pipeline, "TAIL_BYTES", tail_bytes)
    reads = []
    read_corpus = pipeline.read_corpus

    def counted(sources, read_options=None):  # pass 2 reads each shard with read_corpus
        for chunk in read_corpus(sources, read_options):
            reads.append(len(chunk))
            yield chunk

    monkeypatch.setattr(pipeline, "read_corpus", counted)
    summary = filter_corpus(str(inputs), tmp_path / "out", TWO_PASS_RULE, replace(options, shards_at_once=3))
    assert same_outputs(outputs_of(tmp_path / "out"), outputs_of(tmp_path / "in-order"))
    if tail_bytes == 0:
        assert sum(reads) == summary.read
    elif tail_bytes == 30_000:  # some blocks come from memory
        assert 0 < sum(reads) < summary.read
    else:
        assert reads == []


@pytest.mark.parametrize("change", ["append", "truncate"])
def test_a_shard_changed_during_pass_two_is_named(tmp_path, monkeypatch, change):
    """Pass 2 counts each shard's records against pass 1's: a shard that
    grew or shrank in between stops the run, naming that shard."""
    inputs = write_shards(tmp_path / "in", [30, 20, 10])
    changed = inputs / "s1.jsonl.gz"
    decide = pipeline._TwoPass.decide_and_copy

    def changing_input(self, staging):
        lines = gzip.decompress(changed.read_bytes()).splitlines(keepends=True)
        lines = lines + [b'{"text": "late"}\n'] if change == "append" else lines[:12]
        changed.write_bytes(gzip.compress(b"".join(lines)))
        return decide(self, staging)

    monkeypatch.setattr(pipeline._TwoPass, "decide_and_copy", changing_input)
    monkeypatch.setattr(pipeline._TwoPass, "check_files_unchanged", lambda self: None)
    monkeypatch.setattr(pipeline, "TAIL_BYTES", 0)  # pass 2 reads every shard again
    with pytest.raises(BadInputError, match="changed between the two passes") as raised:
        filter_corpus(str(inputs), tmp_path / "out", TWO_PASS_RULE, CurateOptions(block_bytes=4096, shards_at_once=3))
    if change == "append":  # the first record pass 1 did not read
        assert f"pass 2 read {changed}:21 where pass 1 read 20 records" in str(raised.value)
    else:
        assert f"pass 2 read the end of {changed}, after 12 records, where pass 1 read 20 records" in str(raised.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_shard_cut_short_before_the_blocks_held_of_it_is_named(tmp_path, monkeypatch):
    inputs = write_shards(tmp_path / "in", [10, 10, 10, 60])
    last = inputs / "s3.jsonl.gz"
    lines = gzip.decompress(last.read_bytes()).splitlines(keepends=True)
    monkeypatch.setattr(pipeline, "TAIL_BYTES", 20_000)  # the end of the last shard
    monkeypatch.setattr(pipeline._TwoPass, "check_files_unchanged", lambda self: None)
    decide = pipeline._TwoPass.decide_and_copy

    def truncating(self, staging):
        assert 0 < self.tail.first_index[3] and 3 in self.tail.held
        last.write_bytes(gzip.compress(b"".join(lines[:20])))
        return decide(self, staging)

    monkeypatch.setattr(pipeline._TwoPass, "decide_and_copy", truncating)
    with pytest.raises(BadInputError, match=f"pass 2 read the end of {last}, after 20 records, where pass 1 read"):
        filter_corpus(str(inputs), tmp_path / "out", TWO_PASS_RULE, CurateOptions(block_bytes=4096, shards_at_once=2))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_part_that_cannot_be_written_leaves_no_file(tmp_path, monkeypatch):
    """A full disk under a shard read ahead: the run fails, and neither that
    part nor any other is left beside the outputs."""
    import errno

    from cotsieve.io import writers

    inputs = write_shards(tmp_path / "in", [60, 20, 20, 20])
    first_shard_last(monkeypatch)
    part = writers.JsonlKeptWriter.part

    def full_disk_part(self, name):
        writer = part(self, name)
        stream = writer._stream

        class Full:
            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

            def close(self):
                stream.close()

        writer._stream = Full()
        return writer

    monkeypatch.setattr(writers.JsonlKeptWriter, "part", full_disk_part)
    out = tmp_path / "out"
    with pytest.raises(OutputWriteError, match="No space left"):
        filter_corpus(str(inputs), out, RULE, CurateOptions(block_bytes=4096, shards_at_once=3))
    assert not out.exists() or not any(out.iterdir())


def test_no_shard_is_started_far_past_the_turn(tmp_path, monkeypatch):
    """Behind a slow first shard, the lanes start at most two shards per
    lane past it: what is set aside for shards ahead stays bounded."""
    from cotsieve.io import lanes

    inputs = write_shards(tmp_path / "in", [30] + [5] * 20)
    read_jsonl, started, first_done = lanes.read_jsonl, [], threading.Event()
    order = [source.name for source in resolve_inputs(str(inputs))]  # the shards' turns

    def slow_first(source, options):
        started.append(order.index(source.name))
        if started[-1] == 0:
            first_done.wait(1.0)  # long enough for the other lanes to run ahead as far as they may
        yield from read_jsonl(source, options)

    monkeypatch.setattr(lanes, "read_jsonl", slow_first)
    summary = filter_corpus(str(inputs), tmp_path / "out", RULE, CurateOptions(block_bytes=4096, shards_at_once=2))
    first_done.set()
    assert summary.read == 30 + 5 * 20
    ahead_of_first = started[:started.index(0)] + started[started.index(0) + 1:started.index(0) + 4]
    assert max(ahead_of_first) < 2 * 2, started  # shards 1-3 while shard 0 was held, never 4 or more


def test_lanes_stop_when_the_consumer_stops(tmp_path):
    inputs = write_shards(tmp_path / "in", [60, 60, 60])
    before = set(threading.enumerate())
    items = shard_lanes(resolve_inputs(str(inputs)), ReadOptions(block_bytes=4096, parse_threads=2), 3)
    index, chunk = next(items)
    assert len(chunk) > 0 and len(set(threading.enumerate()) - before) >= 3  # the lanes and their readers
    items.close()
    assert set(threading.enumerate()) - before == set()  # every thread it started has ended


def test_lanes_hand_on_every_chunk_of_every_shard_in_each_shards_order(tmp_path):
    inputs = write_shards(tmp_path / "in", [50, 5, 30])
    seen = {}
    ends = []
    for index, item in shard_lanes(resolve_inputs(str(inputs)), ReadOptions(block_bytes=4096), 2):
        if item is None:
            ends.append(index)
        else:
            seen.setdefault(index, []).append(item.first_row)
    assert sorted(ends) == [0, 1, 2]
    assert all(rows == sorted(rows) and rows[0] == 0 for rows in seen.values())


def test_when_shards_are_read_in_order():

    gz = [Source(f"{i}.jsonl.gz", "jsonl", "gzip") for i in range(6)]
    assert shards_at_once(CurateOptions(threads=64), gz) == 6  # at most one per input
    assert shards_at_once(CurateOptions(threads=16), gz) == 2
    assert shards_at_once(CurateOptions(threads=7), gz) == 1
    bz2 = [Source(f"{i}.jsonl.bz2", "jsonl", "bz2") for i in range(6)]
    assert shards_at_once(CurateOptions(threads=4), bz2) == 4  # its decoder alone limits: one per thread
    assert shards_at_once(CurateOptions(threads=4), gz[:3] + bz2[:3]) == 4  # the slowest codec decides
    in_order = [CurateOptions(shards_at_once=4, select=Selection(limit=5)),
                CurateOptions(shards_at_once=4, kept_format="parquet")]
    assert [shards_at_once(o, gz) for o in in_order] == [1, 1]
    assert shards_at_once(CurateOptions(shards_at_once=4), gz[:3] + [Source("x.parquet", "parquet")]) == 1
    with pytest.raises(ValueError, match="shards_at_once"):
        CurateOptions(shards_at_once=0)


def test_a_part_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    inputs = write_shards(tmp_path / "in", [20, 10])
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = out / f".kept.jsonl.gz.{int(dead.stdout)}.shard1.tmp"
    orphan.write_bytes(b"half a member")
    filter_corpus(str(inputs), out, RULE, CurateOptions(shards_at_once=2))
    assert not orphan.exists()
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_cli_reads_shards_at_once_and_refuses_zero(tmp_path):
    inputs = write_shards(tmp_path / "in", [30, 10, 10])
    command = [sys.executable, "-m", "cotsieve", "filter", str(inputs), "--where", "branch_step_ratio <= 0.3",
               "--quiet"]
    for lanes in ("1", "3"):
        done = subprocess.run(command + ["--out", str(tmp_path / lanes), "--shards-at-once", lanes],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert same_outputs(outputs_of(tmp_path / "3"), outputs_of(tmp_path / "1"))
    refused = subprocess.run(command + ["--out", str(tmp_path / "0"), "--shards-at-once", "0"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "--shards-at-once must be at least 1" in refused.stderr
