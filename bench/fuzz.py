"""Fuzz every input reader: generated files must never raise past the error path.

    .venv/bin/python bench/fuzz.py --cases 100000 --out /tmp/fuzz.json

For each format (jsonl, jsonl.gz, jsonl.zst, parquet, warc, wet) it mutates small valid
seed files (flipped bytes, truncation, inserted or duplicated spans, random bytes, two
seeds spliced) and runs each case through what the pipeline does with a file: read_stream,
then build_document for every record, error_row for every error, and the Arrow
conversion of the text columns and of the error rows. A case fails when anything raises
(the reader's own catch-all would hide a reader crash as an `unreadable_file` error, so
those are counted separately, with their messages, to look at). Prints and writes counts
per format. tests/test_fuzz.py runs a quick version.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import logging
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.documents import SourceFile, build_document  # noqa: E402
from pipeline.fields import mapping_from  # noqa: E402
from pipeline.formats import RecordError, SkippedRecords, read_stream  # noqa: E402
from pipeline.read import error_row  # noqa: E402
from schemas import error_schema  # noqa: E402

MAX_RECORD_BYTES = 1 << 16
_JSONL = (b'{"id": "a1", "text": "The council met on Tuesday.", "url": "https://x.org/a", "date": "2021-03-04"}\n'
          b'{"text": "Nested \\u00e9 text", "metadata": {"date": "2024-05-01T00:00:00Z", "tags": [1, 2, {"k": null}]}}\n'
          b'\n{"id": 7, "text": ["not", "a", "string"]}\n[1, 2, 3]\n{"id": "b", "text": "  "}\n'
          b'{"id": "c", "text": "Line with \\ud800 lone surrogate"}\n')


def _warc_record(rtype: str, block: bytes, url: str = "https://example.org/p") -> bytes:
    head = (f"WARC/1.0\r\nWARC-Type: {rtype}\r\nWARC-Date: 2024-05-18T01:58:10Z\r\n"
            f"WARC-Record-ID: <urn:uuid:11111111-2222-4333-8444-555555555555>\r\nWARC-Target-URI: {url}\r\n"
            f"Content-Length: {len(block)}\r\n\r\n").encode()
    return gzip.compress(head + block + b"\r\n\r\n", mtime=0)


def _parquet_seed() -> bytes:
    table = pa.table({"id": ["p1", "p2", None], "text": ["First parquet text.", "", "Third one here."],
                      "timestamp": ["2019-01-01T00:00:00Z", "bad date", None]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2)
    return sink.getvalue()


def seeds() -> dict[str, tuple[str, bytes]]:
    """format label -> (reader format, a valid small file)."""
    html = b"<html><body><nav>menu</nav><p>A page about rain and rivers, with enough words to count.</p></body></html>"
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
    return {
        "jsonl": ("jsonl", _JSONL),
        "jsonl.gz": ("jsonl", gzip.compress(_JSONL, mtime=0)),
        "jsonl.zst": ("jsonl", zstandard.ZstdCompressor().compress(_JSONL)),
        "parquet": ("parquet", _parquet_seed()),
        "warc": ("warc", _warc_record("request", b"GET / HTTP/1.1\r\n\r\n") + _warc_record("response", response)
                 + _warc_record("response", b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n\x89PNG")),
        "wet": ("wet", _warc_record("conversion", b"Plain extracted text of a page.\nSecond line.")),
    }


def mutate(data: bytes, other: bytes, rng: random.Random) -> bytes:
    """One random mutation (sometimes two) of data."""
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2))):
        kind = rng.randrange(7)
        if kind == 0 and b:                                   # flip bytes
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == 1 and b:                                 # truncate
            del b[rng.randrange(len(b)):]
        elif kind == 2:                                       # insert random bytes
            at = rng.randrange(len(b) + 1)
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif kind == 3 and b:                                 # duplicate a span
            lo = rng.randrange(len(b))
            hi = min(len(b), lo + rng.randint(1, 256))
            b[hi:hi] = b[lo:hi]
        elif kind == 4:                                       # splice with another seed
            b = b[: rng.randrange(len(b) + 1)] + bytearray(other[rng.randrange(len(other) + 1):])
        elif kind == 5:                                       # random bytes
            b = bytearray(rng.randbytes(rng.randint(0, 512)))
        elif b:                                               # zero a span
            lo = rng.randrange(len(b))
            b[lo:lo + rng.randint(1, 32)] = bytes(min(32, len(b) - lo))
    return bytes(b)


def run_case(fmt: str, data: bytes, name: str) -> Counter:
    """What the pipeline does with one file; raises if anything escapes the error path."""
    with contextlib.redirect_stderr(io.StringIO()):  # warcio prints a warning per damaged record
        return _run_case(fmt, data, name)


def _run_case(fmt: str, data: bytes, name: str) -> Counter:
    counts: Counter = Counter()
    source = SourceFile(f"/fuzz/{name}", name, fmt, len(data))
    mapping = mapping_from("auto")
    for item in read_stream(lambda: io.BytesIO(data), fmt, SkippedRecords(), MAX_RECORD_BYTES, name=name):
        if isinstance(item, RecordError):
            counts["errors"] += 1
            if item.kind == "unreadable_file" and "could not be read past this point" in item.message:
                counts["caught_reader_exceptions"] += 1
            rows = [error_row(source, item)]
            pa.Table.from_pylist([{k: v for k, v in r.items() if k != "key"} for r in rows], schema=error_schema())
            continue
        counts["records"] += 1
        document = build_document(item, mapping, source)
        if isinstance(document, RecordError):
            counts["errors"] += 1
            pa.Table.from_pylist([{k: v for k, v in error_row(source, document).items() if k != "key"}],
                                 schema=error_schema())
        else:
            counts["documents"] += 1
            for column in ("id", "text", "url", "source_fields"):
                pa.array([document.get(column)], pa.string())
    return counts


def fuzz(cases_per_format: int, seed: int, progress: Callable[[str], None] | None = None) -> dict:
    rng = random.Random(seed)
    pool = seeds()
    others = [data for _, data in pool.values()]
    report: dict = {"seed": seed, "cases_per_format": cases_per_format, "formats": {}}
    for label, (fmt, data) in pool.items():
        totals: Counter = Counter()
        crashes: list[dict] = []
        caught: Counter = Counter()
        started = time.perf_counter()
        for i in range(cases_per_format):
            case = data if i == 0 else mutate(data, rng.choice(others), rng)
            try:
                counts = run_case(fmt, case, f"case-{i}.{label}")
            except Exception:  # noqa: BLE001 - this is what the fuzzer looks for
                totals["crashes"] += 1
                if len(crashes) < 5:
                    crashes.append({"case": i, "bytes": case[:200].hex(), "trace": traceback.format_exc()[-800:]})
                continue
            totals.update(counts)
            if counts["caught_reader_exceptions"]:
                caught[label] += 1
        totals["cases"] = cases_per_format
        report["formats"][label] = {**dict(totals), "seconds": round(time.perf_counter() - started, 1),
                                    "crash_examples": crashes}
        if progress:
            progress(f"{label}: {cases_per_format} cases, {totals['crashes']} crashes, "
                     f"{totals['caught_reader_exceptions']} reader exceptions caught as unreadable_file")
    report["total_cases"] = cases_per_format * len(pool)
    report["total_crashes"] = sum(f.get("crashes", 0) for f in report["formats"].values())
    return report


def main() -> None:
    logging.getLogger("warcio").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000, help="cases per format (default 100000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    report = fuzz(args.cases, args.seed, progress=lambda line: print(line, file=sys.stderr, flush=True))
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    sys.exit(1 if report["total_crashes"] else 0)


if __name__ == "__main__":
    main()
