"""This pipeline's dedup stage and other near-duplicate tools on one corpus, side by side in one
invocation: firsthand (bench/neardup_speed.py --once: the Beam stage on 2 worker processes,
with its default shingle-set verification), datasketch, rensa, datatrove's MinHash dedup.

Settings follow our own near-dup stage (detectors.minhash): word 5-grams of `normalize_for_shingling`
text, 112 permutations = 14 bands x 8 rows (Jaccard threshold 0.8). Two documents are duplicates when
they share an LSH band (no Jaccard check of candidates, as in datatrove; firsthand checks them, so it
removes slightly fewer documents); clusters are the connected components of those pairs (2+
documents) and all but one document of each cluster is removed.
Documents with no shingle (fewer than 5 words) are left out of LSH by every baseline.

Each baseline runs in its own process, started with its own venv's python, one after another. Peak
memory: this process makes itself a child subreaper, so every descendant of a baseline (pool workers,
multiprocessing's forkserver and manager) is reaped by its parent or by us, and `os.wait4` gives the
largest single-process peak RSS the kernel recorded (ru_maxrss). Alongside, /proc is sampled every
50 ms for the summed RSS of the whole process tree (shared pages count once per process).

    /work/main/.venv/bin/python bench/neardup_baselines.py --corpus /tmp/baseline-corpus.jsonl \\
        [--limit 20000] [--only firsthand,datasketch,rensa,datatrove,datatrove-ws] --out results.json

Setup of the benchmark-only venvs (never dependencies of the project):

    python3 -m venv /work/bench-venvs/baselines
    /work/bench-venvs/baselines/bin/pip install rensa datasketch numpy zstandard
    python3 -m venv /work/bench-venvs/datatrove
    /work/bench-venvs/datatrove/bin/pip install 'datatrove[processing]' spacy orjson zstandard

(datatrove's English word tokenizer is spaCy's blank "en" pipeline; spaCy is not in its `processing` extra.)
"""
from __future__ import annotations

import argparse
import ctypes
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from importlib.metadata import version
from typing import Iterator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # detectors.minhash and pipeline.graph need only numpy: every venv can import them from the tree
import numpy as np  # noqa: E402

from detectors.minhash import MinHashConfig, shingles  # noqa: E402
from pipeline.graph import union_find_labels  # noqa: E402  (numpy only, like detectors.minhash)

ALL = ("firsthand", "datasketch", "rensa", "datatrove", "datatrove-ws")
SPEED = os.path.join(REPO, "bench", "neardup_speed.py")
SETUP = {
    "baselines": "python3 -m venv {v} && {v}/bin/pip install rensa datasketch numpy zstandard",
    "datatrove": "python3 -m venv {v} && {v}/bin/pip install 'datatrove[processing]' spacy orjson zstandard",
}
CONFIG = MinHashConfig()  # 5-gram words, 112 = 14 x 8, seed 1
assert (CONFIG.ngram, CONFIG.num_perm, CONFIG.bands, CONFIG.rows) == (5, 112, 14, 8), CONFIG

try:  # only the datatrove venv has it; the tokenizer must be module-level to be pickled to its workers
    from datatrove.utils.word_tokenizers import WordTokenizer
except ImportError:
    WordTokenizer = object  # type: ignore[misc,assignment]


class PlainWhitespaceTokenizer(WordTokenizer):  # type: ignore[misc,valid-type]
    """str.split(): datatrove's own WhitespaceTokenizer is spaCy's multilingual "xx" pipeline."""

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


# ---------------------------------------------------------------- worker side (one baseline per process)

class Stages(dict):
    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self[name] = self.get(name, 0.0) + time.perf_counter() - start  # summed over batches


def read_texts(path: str, limit: int) -> Iterator[str]:
    with open(path, "rb") as raw:
        if path.endswith(".zst"):
            import zstandard
            raw = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        for n, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8")):
            if limit and n >= limit:
                break
            yield json.loads(line)["text"]


def batches(stage: Stages, path: str, limit: int, size: int = 1000) -> Iterator[list[str]]:
    """Streamed, so that peak memory is the library's (signatures, index), not a corpus of shingle sets."""
    texts = read_texts(path, limit)
    while True:
        with stage("read"):
            batch = list(itertools.islice(texts, size))
        if not batch:
            return
        yield batch


def cluster_counts(pairs: Iterator[tuple[int, int]]) -> tuple[int, int]:
    """(documents removed, clusters of 2+) from candidate pairs, with the pipeline's union-find."""
    pairs = list(pairs)
    labels = union_find_labels(np.array([a for a, _ in pairs], np.uint64), np.array([b for _, b in pairs], np.uint64))
    clusters = len(set(labels.values()))
    return len(labels) - clusters, clusters


def run_datasketch(corpus: str, limit: int, stage: Stages) -> dict:
    from datasketch import MinHash, MinHashLSH
    lsh = MinHashLSH(num_perm=CONFIG.num_perm, params=(CONFIG.bands, CONFIG.rows))
    hashes: list[MinHash] = []
    docs = 0
    for texts in batches(stage, corpus, limit):
        docs += len(texts)
        with stage("shingle"):
            sets = [s for s in (shingles(t, CONFIG) for t in texts) if s]
        with stage("minhash"):
            batch = []
            for s in sets:
                batch.append(MinHash(num_perm=CONFIG.num_perm, seed=CONFIG.seed))
                batch[-1].update_batch([x.encode("utf-8") for x in s])
        with stage("lsh_insert"):
            for m in batch:
                lsh.insert(len(hashes), m)
                hashes.append(m)
    with stage("query_cluster"):
        removed, clusters = cluster_counts(((k, j) for k, m in enumerate(hashes)
                                                         for j in lsh.query(m) if j != k))
    return {"docs": docs, "shingled": len(hashes), "removed": removed, "clusters": clusters,
            "versions": {"datasketch": version("datasketch")}}


def run_rensa(corpus: str, limit: int, stage: Stages) -> dict:
    from rensa import RMinHash, RMinHashLSH
    lsh = RMinHashLSH(threshold=0.8, num_perm=CONFIG.num_perm, num_bands=CONFIG.bands)
    hashes: list[RMinHash] = []
    docs = 0
    for texts in batches(stage, corpus, limit):
        docs += len(texts)
        with stage("shingle"):
            sets = [s for s in (shingles(t, CONFIG) for t in texts) if s]
        with stage("minhash"):  # full-set R-MinHash (order-independent), not the sampling "rho" variant
            batch = RMinHash.from_token_sets(sets, num_perm=CONFIG.num_perm, seed=CONFIG.seed)
        with stage("lsh_insert"):
            lsh.insert_many(batch, start_key=len(hashes))
            hashes += batch
    with stage("query_cluster"):
        candidates = lsh.query_all(hashes)
        removed, clusters = cluster_counts(((k, j) for k, c in enumerate(candidates) for j in c if j != k))
    return {"docs": docs, "shingled": len(hashes), "removed": removed, "clusters": clusters,
            "versions": {"rensa": version("rensa")}}


def run_datatrove(shards: str, work: str, whitespace: bool, stage: Stages) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    config = MinhashConfig(n_grams=CONFIG.ngram, num_buckets=CONFIG.bands, hashes_per_bucket=CONFIG.rows)
    # `language` also accepts a WordTokenizer instance: that is datatrove's switch for the tokenizer
    language = {"language": PlainWhitespaceTokenizer()} if whitespace else {}
    out = lambda name: os.path.join(work, name)  # noqa: E731
    steps = {  # (pipeline, tasks, workers): buckets need tasks % num_buckets == 0, clustering is one task
        "signature": ([JsonlReader(shards), MinhashDedupSignature(out("sigs"), config=config, **language)], 2, 2),
        "buckets": ([MinhashDedupBuckets(out("sigs"), out("buckets"), config=config)], CONFIG.bands, 2),
        "cluster": ([MinhashDedupCluster(out("buckets"), out("remove"), config=config)], 1, 1),
        "filter": ([JsonlReader(shards), MinhashDedupFilter(out("remove"))], 2, 2),
    }
    stats = {}
    for name, (pipeline, tasks, workers) in steps.items():
        with stage(name):
            stats[name] = LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers,
                                                logging_dir=out(f"logs-{name}")).run()

    def total(name: str, key: str) -> int:
        return sum(int(s.stats[key].total) for s in stats[name].stats if key in s.stats)
    sigs = os.path.join(work, "sigs", "bucket_000")  # one record (8 uint64 + uint32 doc index) per shingled doc
    shingled = sum(os.path.getsize(os.path.join(sigs, f)) for f in os.listdir(sigs)) // (8 * CONFIG.rows + 4)
    return {"docs": total("signature", "documents"), "shingled": shingled, "removed": total("filter", "dropped"),
            "clusters": total("cluster", "duplicates") - total("cluster", "to_remove"),
            "tokenizer": "str.split" if whitespace else "default (spaCy blank 'en')",
            "versions": {p: version(p) for p in ("datatrove", "spacy", "xxhash")}}


def worker(args: argparse.Namespace) -> None:
    stage = Stages()
    if args.worker.startswith("datatrove"):
        with tempfile.TemporaryDirectory(prefix="neardup-datatrove-") as work:
            result = run_datatrove(args.corpus, work, args.worker == "datatrove-ws", stage)
    else:
        result = (run_datasketch if args.worker == "datasketch" else run_rensa)(args.corpus, args.limit, stage)
    print(json.dumps({**result, "stages": {k: round(v, 3) for k, v in stage.items()}}))


# ---------------------------------------------------------------- driver side

def tree_rss_mb(root: int) -> float:
    """Summed RSS of every descendant of `root`, from /proc (one stat read per process)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            pid = int(entry.name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21])
    total, todo = 0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        total += rss.get(pid, 0)
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(cmd: list[str], log_path: str) -> tuple[int, str, float, float, float]:
    """(exit code, stdout, wall s, peak RSS MB of the largest process, peak summed tree RSS MB)."""
    peak_tree, done = [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak_tree[0] = max(peak_tree[0], tree_rss_mb(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        sampler.start()
        stdout = proc.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss = usage.ru_maxrss
    deadline = time.time() + 30  # orphans handed to us as subreaper (a forkserver exits once its parent has)
    while time.time() < deadline:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
        else:
            maxrss = max(maxrss, usage.ru_maxrss)
    done.set()
    sampler.join()
    return proc.returncode, stdout, wall, maxrss / 1024, peak_tree[0]


def write_shards(corpus: str, limit: int, folder: str, shards: int = 2) -> None:
    """datatrove splits work between tasks by file, so 2 tasks need 2 files: contiguous halves."""
    texts = list(read_texts(corpus, limit))
    size = -(-len(texts) // shards)
    for s in range(shards):
        with open(os.path.join(folder, f"{s:05d}.jsonl"), "w", encoding="utf-8") as f:
            for i, text in enumerate(texts[s * size:(s + 1) * size], start=s * size):
                f.write(json.dumps({"id": str(i), "text": text}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="JSON Lines (optionally .zst) of {id, text}")
    parser.add_argument("--limit", type=int, default=0, help="first N documents (0: all)")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--out", default="neardup-baselines.json")
    parser.add_argument("--baselines-venv", default="/work/bench-venvs/baselines")
    parser.add_argument("--datatrove-venv", default="/work/bench-venvs/datatrove")
    parser.add_argument("--worker", choices=ALL, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if unknown := set(names) - set(ALL):
        parser.error(f"unknown baselines {sorted(unknown)}; choose from {', '.join(ALL)}")
    try:  # PR_SET_CHILD_SUBREAPER: grandchildren orphaned mid-run come back to us to be reaped and measured
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        print("warning: no child subreaper; peak RSS may miss orphaned grandchildren", file=sys.stderr)
    venvs = {"firsthand": ("main", sys.executable), "datasketch": ("main", sys.executable), "rensa": ("baselines", f"{args.baselines_venv}/bin/python"),
             "datatrove": ("datatrove", f"{args.datatrove_venv}/bin/python"),
             "datatrove-ws": ("datatrove", f"{args.datatrove_venv}/bin/python")}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="neardup-baselines-") as tmp:
        shards = os.path.join(tmp, "shards")
        for name in names:
            kind, python = venvs[name]
            if not os.path.exists(python):
                root = args.baselines_venv if kind == "baselines" else args.datatrove_venv
                print(f"skipping {name}: no venv at {root}; create it with:\n    {SETUP[kind].format(v=root)}")
                results[name] = {"skipped": f"missing venv {root}"}
                continue
            corpus = args.corpus
            if name.startswith("datatrove"):
                if not os.path.isdir(shards):
                    os.makedirs(shards)
                    write_shards(args.corpus, args.limit, shards)  # untimed: input layout, not dedup work
                corpus = shards
            log = os.path.join(tmp, f"{name}.log")
            print(f"running {name} ...", flush=True)
            cmd = [python, os.path.abspath(__file__), "--worker", name, "--corpus", corpus, "--limit", str(args.limit)]
            if name == "firsthand":  # the Beam dedup stage on 2 FnApiRunner worker processes, reading included
                cmd = [python, SPEED, "--corpus", corpus, "--workers", "2", "--once"] + (
                    ["--limit", str(args.limit)] if args.limit else [])
            code, stdout, wall, rss, tree = measure(cmd, log)
            if code != 0 or not stdout.strip():
                with open(log) as f:
                    tail = f.read()[-3000:]
                print(f"{name} failed (exit {code}):\n{tail}", file=sys.stderr)
                results[name] = {"failed": code, "log_tail": tail}
                continue
            r = json.loads(stdout.strip().splitlines()[-1])
            if name == "firsthand":
                r = {**r, "stages": {"beam_pipeline": r.pop("wall_s")},
                     "versions": {p: version(p) for p in ("apache-beam", "numpy", "datasketch")}}
            results[name] = {**r, "wall_s": round(wall, 3), "docs_per_s": round(r["docs"] / wall, 1),
                             "peak_rss_mb": round(rss, 1), "peak_tree_rss_mb": round(tree, 1)}
    print(f"\n{'baseline':<13}{'docs':>7}{'docs/s':>9}{'wall s':>8}{'RSS MB':>8}{'tree MB':>9}"
          f"{'removed':>9}{'clusters':>9}  stages (s)")
    for name, r in results.items():
        if "docs" not in r:
            print(f"{name:<13}  {'skipped' if 'skipped' in r else 'failed'}")
            continue
        stages = " ".join(f"{k}={v}" for k, v in r["stages"].items())
        print(f"{name:<13}{r['docs']:>7}{r['docs_per_s']:>9}{r['wall_s']:>8.1f}{r['peak_rss_mb']:>8.0f}"
              f"{r['peak_tree_rss_mb']:>9.0f}{r['removed']:>9}{r['clusters']:>9}  {stages}")
    report = {"corpus": os.path.abspath(args.corpus), "limit": args.limit, "cpus": os.cpu_count(),
              "settings": {"ngram": CONFIG.ngram, "unit": CONFIG.unit, "num_perm": CONFIG.num_perm,
                           "bands": CONFIG.bands, "rows": CONFIG.rows, "threshold": 0.8, "seed": CONFIG.seed},
              "results": results}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
