"""Speed of the Beam dedup stage (exact + near duplicates), side by side with reading alone.

    .venv/bin/python bench/neardup_speed.py --corpus /tmp/nd20k/corpus.jsonl --workers 2 --repeats 3

Each repeat runs two pipelines on the same corpus and runner settings:
  read:        corpus lines -> document dicts -> count
  read+dedup:  the same, then pipeline.dedup.Duplicates -> count of outcomes (summed over its batches)
The dedup stage's throughput is documents / (median read+dedup time - median read time); the
end-to-end figure is documents / median read+dedup time. Memory: peak RSS of this process and of
its children (worker processes), from getrusage. The corpus is JSON Lines of {"id", "text", "date"?}
(bench/neardup_corpus.py builds one). --limit N takes the first N lines, --scale K repeats the
corpus K times with fresh ids (for the 1M-document scaling point).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apache_beam as beam  # noqa: E402
import numpy as np  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from detectors.textnorm import text_hash  # noqa: E402
from pipeline.dedup import Duplicates  # noqa: E402
from pipeline.documents import record_key  # noqa: E402
from pipeline.fields import parse_date  # noqa: E402
from pipeline.lsh import DedupConfig  # noqa: E402

CHUNK = 2000


def line_offsets(path: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) byte offsets of each non-blank line (the first `limit`): workers seek to
    their chunk's lines instead of holding the whole corpus in memory (at 1M documents the
    corpus held once per worker would take GBs that the measurement is not about)."""
    offsets, position = [], 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                offsets.append(position)
                if limit and len(offsets) == limit:
                    position += len(line)
                    break
            position += len(line)
    ends = offsets[1:] + [position]
    return np.array(offsets, dtype=np.int64), np.array(ends, dtype=np.int64)


class ChunkToDocs(beam.DoFn):
    """(chunk index) -> the documents of that chunk, built like the reader builds them."""

    def __init__(self, path: str, limit: int | None, scale: int):
        self._path, self._limit, self._scale = path, limit, scale
        self._starts = self._ends = np.zeros(0, np.int64)

    def setup(self) -> None:
        self._starts, self._ends = line_offsets(self._path, self._limit)

    def _line(self, f, index: int) -> bytes:
        f.seek(int(self._starts[index]))
        return f.read(int(self._ends[index] - self._starts[index]))

    def process(self, chunk: int) -> Iterator[dict]:
        n = len(self._starts)
        with open(self._path, "rb") as f:
            for position in range(chunk * CHUNK, min((chunk + 1) * CHUNK, n * self._scale)):
                yield self._document(position, n, json.loads(self._line(f, position % n)))

    @staticmethod
    def _document(position: int, n: int, record: dict) -> dict:
        copy = position // n  # --scale: the corpus again, with fresh ids
        return {"key": record_key("corpus", position), "id": f"{record['id']}~{copy}" if copy else record["id"],
                "text": record["text"], "source_file": "corpus", "source_position": position,
                "date": parse_date(record.get("date")) if record.get("date") else None,
                "text_hash": text_hash(record["text"])}


def run_once(args: argparse.Namespace, total: int, with_dedup: bool) -> float:
    options = PipelineOptions(flags=[], direct_num_workers=args.workers,
                              direct_running_mode="multi_processing" if args.workers > 1 else "in_memory")
    config = DedupConfig(verify=None if args.verify == "off" else args.verify, partitions=args.partitions,
                         cc_rounds=args.cc_rounds)
    started = time.perf_counter()
    with beam.Pipeline(runner="FnApiRunner", options=options) as p:
        docs = (p | beam.Create(range((total + CHUNK - 1) // CHUNK)) | beam.Reshuffle()
                | beam.ParDo(ChunkToDocs(args.corpus, args.limit, args.scale)))
        if with_dedup:
            outcomes, reports = docs | Duplicates(config)
            tallies = outcomes | beam.Map(_tally) | beam.CombineGlobally(_sum_tallies)  # outcomes come in batches
            counts = (reports | beam.FlatMap(lambda r: r["counts"].items())  # the dedup reports' counts, summed
                      | beam.CombinePerKey(sum) | beam.combiners.ToDict())
            _ = tallies | beam.Map(_write_tally, args.tally_path, beam.pvalue.AsSingleton(counts))
            counted = tallies | beam.Map(lambda t: t[0])
        else:
            counted = docs | beam.combiners.Count.Globally()
        _ = counted | beam.Map(lambda n, want=total: _check(n, want))
    return time.perf_counter() - started


def _tally(batch: list[tuple[int, tuple]]) -> tuple[int, int, int]:
    """(outcomes, documents removed as duplicates, clusters of 2+) of one outcome batch."""
    removed = sum(1 for _, info in batch if info[5] is not None)
    clusters = sum(1 for _, info in batch if info[4] and info[3] > 1)
    return len(batch), removed, clusters


def _sum_tallies(tallies) -> tuple[int, int, int]:
    n = removed = clusters = 0
    for a, b, c in tallies:
        n, removed, clusters = n + a, removed + b, clusters + c
    return n, removed, clusters


def _write_tally(tally: tuple[int, int, int], path: str, counts: dict[str, int]) -> None:
    # distinct candidate pairs checked by verification (each has two distinct halves); unknown without it
    pairs = counts["distinct_edge_halves"] // 2 if "distinct_edge_halves" in counts else None
    Path(path).write_text(json.dumps({**dict(zip(("docs", "removed", "clusters"), tally)),
                                      "candidate_edges": counts.get("candidate_edges", 0),
                                      "distinct_candidate_pairs": pairs}))


def _error_summary(error: Exception) -> str:
    """The line a failed attempt is recorded by: the last that names the error (a traceback ends with it)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [repr(error)]
    named = [line for line in lines if line.startswith(("RuntimeError", "ValueError", "internal error"))]
    return (named or lines)[-1][:300]


def _check(n: int, want: int) -> None:
    if n != want:
        raise SystemExit(f"expected {want} outcomes, got {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--cc-rounds", type=int, default=DedupConfig().cc_rounds)
    parser.add_argument("--verify", default=DedupConfig().verify, choices=("shingles", "signature", "off"))
    parser.add_argument("--max-failures", type=int, default=3,
                        help="read+dedup attempts that may fail (and are listed in the output) before the "
                             "benchmark gives up; Beam 2.77's multi_processing mode lost data now and then "
                             "at 1M documents, which the pipeline's checks catch (see README)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument("--once", action="store_true",
                        help="run read+dedup once and print one JSON line (docs, removed, clusters, "
                             "candidate_edges, distinct_candidate_pairs, wall_s): "
                             "how bench/neardup_baselines.py runs this pipeline next to the other tools")
    parser.add_argument("--read-only", action="store_true",
                        help="with --once: run the read pipeline alone and print {docs, wall_s} "
                             "(bench/neardup_scaling.py subtracts it)")
    args = parser.parse_args()
    if args.read_only and not args.once:
        parser.error("--read-only goes with --once")
    total = len(line_offsets(args.corpus, args.limit)[0]) * args.scale
    with tempfile.TemporaryDirectory(prefix="neardup-speed-") as tmp:
        args.tally_path = os.path.join(tmp, "tally.json")
        if args.once and args.read_only:
            print(json.dumps({"docs": total, "wall_s": round(run_once(args, total, with_dedup=False), 3)}))
        elif args.once:
            wall = run_once(args, total, with_dedup=True)
            print(json.dumps({**json.loads(Path(args.tally_path).read_text()), "wall_s": round(wall, 3)}))
        else:
            repeat(args, total)


def repeat(args: argparse.Namespace, total: int) -> None:
    times: dict[str, list[float]] = {"read": [], "read+dedup": []}
    failures: list[str] = []
    while len(times["read+dedup"]) < args.repeats:  # interleaved, so drift on a shared machine hits both alike
        times["read"].append(run_once(args, total, with_dedup=False))
        try:
            times["read+dedup"].append(run_once(args, total, with_dedup=True))
        except Exception as e:  # noqa: BLE001 - a run the pipeline's own checks stopped is counted, not hidden
            failures.append(_error_summary(e))
            print(f"read+dedup attempt failed ({len(failures)} of at most {args.max_failures}): {failures[-1]}",
                  file=sys.stderr)
            if len(failures) >= args.max_failures:
                raise SystemExit(f"{len(failures)} failed attempts: {failures}") from None
    read, both = statistics.median(times["read"]), statistics.median(times["read+dedup"])
    tally = json.loads(Path(args.tally_path).read_text())  # the same in every complete run
    peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    result = {
        "corpus": args.corpus, "documents": total, "workers": args.workers, "partitions": args.partitions,
        "verify": args.verify, "seconds": times, "failed_attempts": failures,
        "median_read_s": round(read, 2), "median_read_dedup_s": round(both, 2),
        "dedup_stage_docs_per_s": round(total / max(both - read, 1e-9)),
        "dedup_stage_us_per_doc": round(1e6 * (both - read) / total, 1),
        "distinct_candidate_pairs_per_doc": (None if tally["distinct_candidate_pairs"] is None
                                             else round(tally["distinct_candidate_pairs"] / total, 3)),
        "outcomes": tally,
        "read_plus_dedup_docs_per_s": round(total / both),
        "peak_rss_mb": round(peak_mb), "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
