"""End-to-end throughput of `firsthand run` on real text, in-process vs worker processes.

Builds a corpus from ../shared/data/detector/train.jsonl.zst (35,905 labelled human and
machine texts), split round-robin into zstd JSON Lines shards, with every 10th text
repeated in another shard so exact dedup has work. Then runs the pipeline once per
worker setting, side by side, and prints docs/s and peak RSS of the run's processes.

    python bench/pipeline_throughput.py [--shards 8] [--workers 1 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import zstandard

SOURCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "detector", "train.jsonl.zst")


def build_corpus(folder: str, shards: int) -> int:
    with open(SOURCE, "rb") as f:
        text = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        rows = [json.loads(line) for line in io.TextIOWrapper(text, encoding="utf-8")]
    buckets: list[list[bytes]] = [[] for _ in range(shards)]
    n = 0
    for i, row in enumerate(rows):
        line = json.dumps({"id": row["id"], "text": row["text"]}).encode() + b"\n"
        buckets[i % shards].append(line)
        n += 1
        if i % 10 == 0:  # an exact copy under another id, in another shard
            buckets[(i + 1) % shards].append(json.dumps({"id": row["id"] + "-copy", "text": row["text"]}).encode() + b"\n")
            n += 1
    for s, lines in enumerate(buckets):
        with open(os.path.join(folder, f"shard-{s:03d}.jsonl.zst"), "wb") as f:
            f.write(zstandard.ZstdCompressor(level=3).compress(b"".join(lines)))
    return n


_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def run_once(corpus: str, out: str, workers: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the largest process of one run, measured by a fresh
    wrapper process so that earlier runs do not leak into the figure."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "pipeline", "run",
                             "--input", f"{corpus}/*", "--output", out, "--workers", str(workers),
                             "--num-shards", "4", "--no-report"], check=True, capture_output=True, text=True)
    return time.perf_counter() - started, int(result.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not os.path.exists(SOURCE):
        sys.exit(f"skipped: {SOURCE} not found (needs ../shared/data beside the checkout)")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus")
        os.makedirs(corpus)
        docs = build_corpus(corpus, args.shards)
        mb = sum(os.path.getsize(os.path.join(corpus, f)) for f in os.listdir(corpus)) / 1e6
        print(f"corpus: {docs:,} documents in {args.shards} zstd shards ({mb:.1f} MB compressed)")
        times: dict[int, list[float]] = {w: [] for w in args.workers}
        peaks: dict[int, float] = {w: 0.0 for w in args.workers}
        for r in range(args.repeat):  # interleaved, so machine noise hits every setting alike
            for w in args.workers:
                elapsed, peak = run_once(corpus, os.path.join(tmp, f"run-{w}-{r}"), w)
                times[w].append(elapsed)
                peaks[w] = max(peaks[w], peak)
        base = statistics.median(times[args.workers[0]])
        for w in args.workers:
            med = statistics.median(times[w])
            print(f"workers={w}: median {med:.1f}s over {args.repeat} runs, {docs / med:,.0f} docs/s, "
                  f"peak RSS of one process {peaks[w]:.0f} MB, speed-up vs workers={args.workers[0]}: {base / med:.2f}x")


if __name__ == "__main__":
    main()
