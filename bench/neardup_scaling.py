r"""Does the dedup stage's cost per document stay flat from 10k to 1M documents? Side by side.

    .venv/bin/python bench/neardup_scaling.py --corpus /tmp/nd10k-mix/corpus.jsonl \
        --corpus /tmp/nd100k-mix/corpus.jsonl --corpus /tmp/nd1m-mix/corpus.jsonl --rounds 3

Separate `neardup_speed.py` runs at each size, taken hours apart, differed by up to ~20%
on this shared machine, more than the effect being measured. So every round here runs every
corpus, each as two fresh processes (`neardup_speed.py --once --read-only` and `--once`), so
that drift hits all sizes alike and no run inherits another's heap; the order of the sizes
rotates from round to round, and so does which of the two runs goes first.

Every figure is paired within a round, then the median over rounds is taken: the dedup
stage's time is read + dedup less read alone in the same round; its cost per document;
that cost relative to the largest corpus's in the same round; and the marginal cost, what
each document added since the next smaller corpus cost (the difference of the two sizes'
dedup times over the documents added, free of the fixed start-up of the ~40-stage
pipeline, which dominates at 10k). Ranges over rounds come with each. The outcome counts
(removed, clusters, candidate pairs) must be the same in every round. A failed child is
retried, up to --max-failures in all, and listed. Peak RSS is the largest single process's
(wait4's ru_maxrss), in MiB. The corpora should be built by `neardup_corpus.py build --fill
mix` at each size, so that each has the same mix (README, near-duplicate scaling).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SPEED = str(Path(__file__).resolve().with_name("neardup_speed.py"))


def run_child(args: argparse.Namespace, corpus: str, read_only: bool) -> dict:
    """One `neardup_speed.py --once` process: its JSON line plus its peak RSS."""
    cmd = [sys.executable, SPEED, "--corpus", corpus, "--workers", str(args.workers),
           "--partitions", str(args.partitions), "--verify", args.verify, "--once"] + (["--read-only"] if read_only else [])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, start_new_session=True)
        try:
            _, status, usage = os.wait4(child.pid, 0)  # rusage of this child (and the workers it waited for)
        except BaseException:  # Ctrl-C: leave no run of minutes behind, Beam's worker processes included
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        raise ChildFailed(f"{' '.join(cmd[1:])}: exit status {child.returncode}: {tail[-400:]}")
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_rss_mib": round(usage.ru_maxrss / 1024)}


class ChildFailed(RuntimeError):
    pass


def _spread(values: list[float], digits: int) -> dict:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


COUNTS = ("removed", "clusters", "candidate_edges", "distinct_candidate_pairs")


def summarise(corpus: str, runs: list[tuple[dict, dict]], largest: list[tuple[dict, dict]],
              smaller: list[tuple[dict, dict]] | None) -> dict:
    """One corpus's figures from its (read, read + dedup) pair of each round."""
    docs = runs[0][1]["docs"]
    counts = {k: runs[0][1][k] for k in COUNTS}
    for round_index, (read, read_dedup) in enumerate(runs):
        if read["docs"] != docs or read_dedup["docs"] != docs:
            raise SystemExit(f"{corpus}: round {round_index + 1} counted {read['docs']} and {read_dedup['docs']} "
                             f"documents, round 1 {docs}")
        if {k: read_dedup[k] for k in COUNTS} != counts:
            raise SystemExit(f"{corpus}: round {round_index + 1} found {read_dedup}, round 1 {counts}: "
                             "the dedup outcome must not change between runs")

    def dedup_s(pair: tuple[dict, dict]) -> float:
        return pair[1]["wall_s"] - pair[0]["wall_s"]

    largest_docs = largest[0][1]["docs"]
    result = {
        "corpus": corpus, "documents": docs,
        "read_s": [r["wall_s"] for r, _ in runs], "read_dedup_s": [b["wall_s"] for _, b in runs],
        "dedup_stage_us_per_doc": _spread([1e6 * dedup_s(p) / docs for p in runs], 1),
        "dedup_stage_vs_largest": _spread([(dedup_s(p) / docs) / (dedup_s(q) / largest_docs)
                                           for p, q in zip(runs, largest)], 3),
        "dedup_stage_marginal_us_per_doc": None,
        "read_dedup_us_per_doc": _spread([1e6 * b["wall_s"] / docs for _, b in runs], 1),
        "distinct_candidate_pairs_per_doc": (None if counts["distinct_candidate_pairs"] is None
                                             else round(counts["distinct_candidate_pairs"] / docs, 3)),
        **counts,
        "peak_rss_mib": max(max(r["peak_rss_mib"], b["peak_rss_mib"]) for r, b in runs),
    }
    added = docs - smaller[0][1]["docs"] if smaller is not None else 0
    if added > 0:
        result["dedup_stage_marginal_us_per_doc"] = _spread(
            [1e6 * (dedup_s(p) - dedup_s(q)) / added for p, q in zip(runs, smaller)], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True,
                        help="a corpus (JSON Lines) per size; repeat the option for each size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--verify", default="shingles", choices=("shingles", "signature", "off"))
    parser.add_argument("--max-failures", type=int, default=3,
                        help="failed child runs retried before giving up (Beam 2.77's multi_processing mode "
                             "lost data now and then at 1M documents; see README)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here (after every round)")
    args = parser.parse_args()
    if len(set(args.corpus)) != len(args.corpus):
        parser.error("each --corpus once")
    for corpus in args.corpus:
        if not Path(corpus).is_file():
            parser.error(f"no corpus at {corpus}: build it with bench/neardup_corpus.py build --docs N --out DIR --fill mix")
    runs: dict[str, list[tuple[dict, dict]]] = {c: [] for c in args.corpus}
    failures: list[str] = []
    for round_index in range(args.rounds):
        order = args.corpus[round_index % len(args.corpus):] + args.corpus[:round_index % len(args.corpus)]
        for corpus in order:
            runs[corpus].append(run_pair(args, corpus, read_first=round_index % 2 == 0, failures=failures))
            read, read_dedup = runs[corpus][-1]
            print(f"round {round_index + 1}/{args.rounds} {corpus}: read {read['wall_s']} s, "
                  f"read+dedup {read_dedup['wall_s']} s", file=sys.stderr, flush=True)
        result = report(args, runs, failures)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


def run_pair(args: argparse.Namespace, corpus: str, read_first: bool, failures: list[str]) -> tuple[dict, dict]:
    pair = {}
    for read_only in (True, False) if read_first else (False, True):
        while read_only not in pair:
            try:
                pair[read_only] = run_child(args, corpus, read_only)
            except ChildFailed as e:
                failures.append(str(e))
                print(f"run failed ({len(failures)} of at most {args.max_failures}): {e}", file=sys.stderr)
                if len(failures) >= args.max_failures:
                    raise SystemExit(f"{len(failures)} failed runs: {failures}") from None
    return pair[True], pair[False]


def report(args: argparse.Namespace, runs: dict[str, list[tuple[dict, dict]]], failures: list[str]) -> dict:
    by_size = sorted(runs, key=lambda c: runs[c][0][1]["docs"])
    largest = runs[by_size[-1]]
    sizes = {c: summarise(c, runs[c], largest, runs[by_size[i - 1]] if i else None) for i, c in enumerate(by_size)}
    return {"workers": args.workers, "partitions": args.partitions, "verify": args.verify,
            "rounds": len(largest), "failed_runs": failures, "sizes": [sizes[c] for c in args.corpus],
            "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


if __name__ == "__main__":
    main()
