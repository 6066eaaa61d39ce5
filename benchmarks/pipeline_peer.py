"""The peer of ``cotsieve filter``: the script a team writes by hand with
Hyperscan, for the paper's remedy on one threshold.

It streams a ``.jsonl.gz`` (Python's gzip), parses each line with orjson,
cuts the text into paragraphs, finds the paper's three branching keywords
(Perhaps, Another, Alternatively; caseless, ``\\b``) with Hyperscan, computes
``branch_step_ratio`` (paragraphs with a keyword / paragraphs), keeps the
records at or under the threshold byte for byte in a gzip file (level 1),
and writes one Parquet row per record. It does less than cotsieve: three
patterns instead of 84, one metric instead of 40, no rejects file, and it
stops at the first malformed line.

    python benchmarks/pipeline_peer.py CORPUS.jsonl.gz OUT_DIR [--threshold 0.3]
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import re
import sys
import time
from pathlib import Path

import hyperscan
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

KEYWORDS = (b"perhaps", b"another", b"alternatively")
PARAGRAPH_BREAK = re.compile(rb"\n[ \t\r]*\n")


def compile_keywords() -> hyperscan.Database:
    db = hyperscan.Database()
    db.compile(expressions=[rb"\b" + k + rb"\b" for k in KEYWORDS], ids=list(range(len(KEYWORDS))),
               elements=len(KEYWORDS), flags=[hyperscan.HS_FLAG_CASELESS] * len(KEYWORDS))
    return db


def branch_step_ratio(db: hyperscan.Database, text: bytes) -> float:
    starts = [0] + [m.end() for m in PARAGRAPH_BREAK.finditer(text)]
    flagged: set[int] = set()

    def on_match(_id: int, _start: int, end: int, _flags: int, _context: object) -> None:
        flagged.add(bisect.bisect_right(starts, end - 1) - 1)

    db.scan(text, match_event_handler=on_match)
    return len(flagged) / len(starts)


def run(corpus: Path, out: Path, threshold: float) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    db = compile_keywords()
    ratios, kept, n_bytes = [], 0, 0
    with gzip.open(corpus, "rb") as src, gzip.open(out / "kept.jsonl.gz", "wb", compresslevel=1) as dst:
        for line in src:
            n_bytes += len(line)
            if not line.strip():
                continue
            ratio = branch_step_ratio(db, orjson.loads(line)["text"].encode())
            ratios.append(ratio)
            if ratio <= threshold:
                dst.write(line)
                kept += 1
    pq.write_table(pa.table({"row": pa.array(range(len(ratios))), "branch_step_ratio": pa.array(ratios)}),
                   out / "metrics.parquet")
    return {"read": len(ratios), "kept": kept, "record_bytes": n_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threshold", type=float, default=0.3)
    args = parser.parse_args()
    start = time.perf_counter()
    summary = run(args.corpus, args.out, args.threshold)
    summary["seconds"] = time.perf_counter() - start
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
