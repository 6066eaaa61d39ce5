"""The reader's parts against their peers, one core, in one run.

On one ``.jsonl.gz`` corpus (the real Sky-T1 traces by default), decompressed
once into memory, it times in turns (``best_seconds_interleaved``):

- inflate: ISA-L (``isal``, what the reader uses) against zlib (Arrow's and
  Python's gzip);
- deflate at level 1: ISA-L (what the kept writer uses) against zlib, with
  each output's size;
- JSON: the native reader (``_core.extract_jsonl``, text field only) against
  Arrow's JSON reader (one thread, the text column only), both on the 16 MiB
  blocks of whole lines the reader hands on, and orjson line by line.

MB/s counts uncompressed bytes.

    python benchmarks/bench_reader.py [--input traces.jsonl.gz] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pj
from isal import igzip, isal_zlib

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cotsieve import _core  # noqa: E402
from cotsieve.io.jsonl import _line_offsets  # noqa: E402
from peers import best_seconds_interleaved, shared_data_dir  # noqa: E402


def blocks_of(data: bytes, size: int = 16 << 20) -> list[bytes]:
    """Whole-line blocks of about ``size`` bytes, as the reader hands them on."""
    blocks, start = [], 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + size) + 1 or len(data)
        blocks.append(data[start:end])
        start = end
    return blocks


def json_peers(data: bytes) -> dict:
    blocks = [(b, _line_offsets(b)) for b in blocks_of(data)]
    lines = data.splitlines()
    schema = pa.schema([("text", pa.string())])
    arrow = (pj.ReadOptions(use_threads=False, block_size=1 << 24),
             pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
    timed = {
        "JSON: native reader (cotsieve)": lambda: [_core.extract_jsonl(b, o, ["text"], 4300) for b, o in blocks],
        "JSON: Arrow read_json, one thread": lambda: [pj.read_json(pa.BufferReader(b), *arrow) for b, _ in blocks],
    }
    try:
        import orjson
    except ImportError:
        return timed
    timed["JSON: orjson per line"] = lambda: [orjson.loads(line)["text"].encode() for line in lines if line]
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=shared_data_dir() / "skythought_sky_t1_outputs.jsonl.gz")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not args.input.exists():
        sys.exit(f"{args.input} not found; pass --input a .jsonl.gz file")
    packed = args.input.read_bytes()
    data = zlib.decompress(packed, 31)
    sizes = {"deflate L1: ISA-L (cotsieve)": len(isal_zlib.compress(data, 1, wbits=31)),
             "deflate L1: zlib": len(zlib.compressobj(1, zlib.DEFLATED, 31).compress(data))}
    timed = {
        "inflate: ISA-L (cotsieve)": lambda: igzip.decompress(packed),
        "inflate: zlib (Arrow)": lambda: pa.input_stream(str(args.input), compression="gzip").read(),
        "inflate: zlib (Python)": lambda: zlib.decompress(packed, 31),
        "deflate L1: ISA-L (cotsieve)": lambda: isal_zlib.compress(data, 1, wbits=31),
        "deflate L1: zlib": lambda: (lambda c: c.compress(data) + c.flush())(zlib.compressobj(1, zlib.DEFLATED, 31)),
        **json_peers(data),
    }
    seconds = best_seconds_interleaved(timed, args.repeat)
    print(f"{args.input.name}: {len(data) / 1e6:.1f} MB uncompressed, best of {args.repeat}, one core")
    print("| step | MB/s | output / input |")
    print("|---|---:|---:|")
    for name, secs in seconds.items():
        ratio = f"{sizes[name] / len(data):.3f}" if name in sizes else ""
        print(f"| {name} | {len(data) / secs / 1e6:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
