"""The kept-corpus writer copies exactly the kept lines, in order, whatever
the codec, the level and where the runs of kept lines fall against the
compressed members' boundaries."""

import gzip
import io
import json

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from cotsieve.io import writers as io_writers
from cotsieve.io import ReadOptions, read_corpus
from cotsieve.io.writers import JsonlKeptWriter

CODECS = [(None, None), ("gzip", 1), ("gzip", 3), ("gzip", 6), ("gzip", 0), ("zstd", 3)]


def decompressed(path, compression):
    data = open(path, "rb").read()
    if compression == "gzip":
        return gzip.decompress(data)
    if compression == "zstd":
        # one frame per member: read across all of them
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    return data


def corpus(folder, sizes):
    lines = [json.dumps({"text": f"line {i} " + "x" * size}).encode() + b"\n" for i, size in enumerate(sizes)]
    path = folder / "in.jsonl"
    path.write_bytes(b"".join(lines))
    return path, lines


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 90), min_size=1, max_size=60), seed=st.integers(0, 2**32 - 1),
       member_bytes=st.sampled_from([1, 7, 64, 500, 1 << 20]), codec=st.sampled_from(CODECS))
def test_kept_lines_come_out_whole_and_in_order(tmp_path_factory, sizes, seed, member_bytes, codec):
    import numpy as np

    folder = tmp_path_factory.mktemp("kept")
    path, lines = corpus(folder, sizes)
    compression, level = codec
    rng = np.random.default_rng(seed)
    expected = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(io_writers, "_MEMBER_BYTES", member_bytes)
        writer = JsonlKeptWriter(folder / "kept.out", compression, level, threads=2)
        for chunk in read_corpus(str(path), ReadOptions(parse=False, block_bytes=256)):
            keep = rng.random(len(chunk)) < rng.choice([0.0, 0.5, 0.9, 1.0])
            writer.write(chunk, keep)
            expected += [line for line, k in zip(lines[chunk.first_row:chunk.first_row + len(chunk)], keep) if k]
        writer.close()
    assert decompressed(writer.file.temp, compression) == b"".join(expected)


@pytest.mark.parametrize("codec", CODECS)
def test_a_part_appended_comes_between_what_was_written_before_and_after(tmp_path, monkeypatch, codec):
    """A shard read ahead of its turn writes to a part; appended at its turn,
    its lines land after everything written before, members still being
    compressed included, and before what comes next."""
    import numpy as np

    path, lines = corpus(tmp_path, [40] * 90)
    compression, level = codec
    monkeypatch.setattr(io_writers, "_MEMBER_BYTES", 64)  # many members in work at once
    chunks = list(read_corpus(str(path), ReadOptions(parse=False, block_bytes=1024)))
    assert len(chunks) >= 3
    writer = JsonlKeptWriter(tmp_path / "kept.out", compression, level, threads=2)
    part = writer.part("shard1")
    everything = np.ones(len(chunks[1]), bool)
    part.write(chunks[1], everything)
    writer.write(chunks[0], np.ones(len(chunks[0]), bool))
    writer.append(part)
    for chunk in chunks[2:]:
        writer.write(chunk, np.ones(len(chunk), bool))
    writer.close()
    part.file.discard()
    assert decompressed(writer.file.temp, compression) == b"".join(lines)
    assert part.file.temp.name.startswith(".kept.out.") and part.file.temp.name.endswith(".shard1.tmp")
    writer.file.discard()
