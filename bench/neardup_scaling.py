"""Does the dedup stage's cost per document stay flat from 10k to 1M documents? Side by side.

    .venv/bin/python bench/neardup_scaling.py --corpus /tmp/nd10k-mix/corpus.jsonl \
        --corpus /tmp/nd100k-mix/corpus.jsonl --corpus /tmp/nd1m-mix/corpus.jsonl --rounds 3

Separate `neardup_speed.py` runs at each size, taken hours apart, differed by up to ~20%
on this shared machine, more than the effect being measured. So here every round runs every
corpus, one after the other, each as two fresh processes (`neardup_speed.py --once
--read-only`, then `--once`), so that drift hits all sizes alike and no run inherits
another's heap. Per corpus: the median over rounds of read + dedup and of read alone, the
dedup stage's µs per document (their difference) and what each document added since the
next smaller corpus cost (the marginal µs per document, free of the fixed start-up of the
~40-stage pipeline, which dominates at 10k), the end-to-end µs per document, each
child's peak RSS, and each size's cost relative to the largest corpus's. The corpora should be
built by `neardup_corpus.py build --fill mix` at each size, so each has the same mix (see
README, near-duplicate scaling).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SPEED = str(Path(__file__).resolve().with_name("neardup_speed.py"))


def run_child(args: argparse.Namespace, corpus: str, read_only: bool) -> dict:
    """One `neardup_speed.py --once` process: its JSON line plus its peak RSS (wait4's, which
    covers the worker processes it waited for)."""
    cmd = [sys.executable, SPEED, "--corpus", corpus, "--workers", str(args.workers),
           "--partitions", str(args.partitions), "--verify", args.verify, "--once"] + (["--read-only"] if read_only else [])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise SystemExit(f"{' '.join(cmd)} failed with exit status {child.returncode}:\n{tail}")
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def summarise(corpus: str, reads: list[dict], boths: list[dict]) -> dict:
    docs = boths[0]["docs"]
    read = statistics.median(r["wall_s"] for r in reads)
    both = statistics.median(b["wall_s"] for b in boths)
    pairs = boths[0]["distinct_candidate_pairs"]
    return {
        "corpus": corpus, "documents": docs,
        "read_s": [r["wall_s"] for r in reads], "read_dedup_s": [b["wall_s"] for b in boths],
        "median_read_s": round(read, 2), "median_read_dedup_s": round(both, 2),
        "dedup_stage_us_per_doc": round(1e6 * (both - read) / docs, 1),
        "dedup_stage_us_per_doc_by_round": [round(1e6 * (b["wall_s"] - r["wall_s"]) / docs, 1)
                                            for r, b in zip(reads, boths)],
        "read_dedup_us_per_doc": round(1e6 * both / docs, 1),
        "distinct_candidate_pairs_per_doc": None if pairs is None else round(pairs / docs, 3),
        "removed": boths[0]["removed"], "clusters": boths[0]["clusters"],
        "peak_rss_mb": max(b["peak_rss_mb"] for b in boths),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, help="a corpus per size; give it once per size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--verify", default="shingles", choices=("shingles", "signature", "off"))
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    for corpus in args.corpus:
        if not Path(corpus).is_file():
            raise SystemExit(f"no corpus at {corpus}: build it with bench/neardup_corpus.py build --docs N --out DIR --fill mix")
    reads: dict[str, list[dict]] = {c: [] for c in args.corpus}
    boths: dict[str, list[dict]] = {c: [] for c in args.corpus}
    for round_number in range(1, args.rounds + 1):
        for corpus in args.corpus:
            reads[corpus].append(run_child(args, corpus, read_only=True))
            boths[corpus].append(run_child(args, corpus, read_only=False))
            if boths[corpus][-1]["docs"] != reads[corpus][-1]["docs"]:
                raise SystemExit(f"{corpus}: read {reads[corpus][-1]['docs']} documents, dedup "
                                 f"{boths[corpus][-1]['docs']}")
            print(f"round {round_number}/{args.rounds} {corpus}: read {reads[corpus][-1]['wall_s']} s, "
                  f"read+dedup {boths[corpus][-1]['wall_s']} s", file=sys.stderr, flush=True)
    sizes = [summarise(c, reads[c], boths[c]) for c in args.corpus]
    largest = max(sizes, key=lambda s: s["documents"])
    previous = None
    for s in sorted(sizes, key=lambda s: s["documents"]):  # what each added document cost: no fixed start-up in it
        if previous is not None and s["documents"] > previous["documents"]:
            added = s["documents"] - previous["documents"]
            s["dedup_stage_marginal_us_per_doc"] = round(
                1e6 * ((s["median_read_dedup_s"] - s["median_read_s"])
                       - (previous["median_read_dedup_s"] - previous["median_read_s"])) / added, 1)
        previous = s
    for s in sizes:
        s["dedup_cost_vs_largest"] = round(s["dedup_stage_us_per_doc"] / largest["dedup_stage_us_per_doc"], 3)
        s["read_dedup_cost_vs_largest"] = round(s["read_dedup_us_per_doc"] / largest["read_dedup_us_per_doc"], 3)
    result = {"workers": args.workers, "partitions": args.partitions, "verify": args.verify, "rounds": args.rounds,
              "sizes": sizes, "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
