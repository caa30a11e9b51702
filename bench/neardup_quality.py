"""Near-duplicate quality: pair precision/recall and purity against exact-Jaccard ground truth.

    .venv/bin/python bench/neardup_corpus.py build --docs 20000 --out /tmp/nd20k
    .venv/bin/python bench/neardup_corpus.py truth --corpus /tmp/nd20k/corpus.jsonl --threshold 0.8 --out /tmp/nd20k/truth.json
    .venv/bin/python bench/neardup_quality.py --dir /tmp/nd20k            # sweep + the real pipeline at the defaults

Two parts:
  sweep  LSH settings (bands x rows, verification) simulated with the pipeline's own kernels
         (detectors.minhash signatures and band keys, pipeline.graph star edges, union-find): fast,
         for choosing the defaults.
  beam   `firsthand run --mode tag` at the defaults (or --beam-args), scored from its output's
         dup_cluster_id column: the number that counts.
Scores are reported on the whole corpus and without the one page copied 1,000 times (its
half-million pairs otherwise dominate every pair metric).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from detectors.minhash import (  # noqa: E402
    MinHashConfig, MinHasher, bottom_k_sets, estimated_jaccard, has_shingles, set_similarity, shingle_hashes,
)
from pipeline.lsh import SET_LIMIT  # noqa: E402
from neardup_corpus import read_corpus, score  # noqa: E402
from pipeline import graph  # noqa: E402

SWEEP = [  # (bands, rows, verification: None / "signature" / "shingles", permutations)
    (14, 8, None, 112), (14, 8, "signature", 112), (14, 8, "shingles", 112),
    (9, 12, None, 112), (9, 12, "signature", 112), (9, 12, "shingles", 112),
    (12, 9, None, 112), (12, 9, "shingles", 112), (20, 8, "signature", 160), (20, 8, "shingles", 160),
]
THRESHOLD = 0.8


def simulate(texts: list[str], bands: int, rows: int, verify: str | None, num_perm: int) -> np.ndarray:
    """Cluster label per document, as the pipeline computes it (text-hash keys aside: every
    corpus document has shingles)."""
    config = MinHashConfig(bands=bands, rows=rows, num_perm=num_perm)
    hasher = MinHasher(config)
    signatures, sets = [], []
    for i in range(0, len(texts), 2000):
        hashes, owner = shingle_hashes(texts[i:i + 2000], config)
        count = len(texts[i:i + 2000])
        signatures.append(hasher.signatures_from_hashes(hashes, owner, count))
        if verify == "shingles":
            sets.extend(bottom_k_sets(hashes, owner, count, SET_LIMIT))
    signatures = np.vstack(signatures)
    signed = np.flatnonzero(has_shingles(signatures)).astype(np.uint64)
    keys = hasher.band_keys(signatures[signed.astype(np.int64)])
    a, b = graph.star_edges(keys.ravel(), np.repeat(signed, bands))
    ia, ib = a.astype(np.int64), b.astype(np.int64)
    if verify == "signature":
        keep = estimated_jaccard(signatures[ia], signatures[ib]) >= THRESHOLD
        a, b = a[keep], b[keep]
    elif verify == "shingles":
        keep = np.array([set_similarity(sets[x], sets[y], SET_LIMIT) >= THRESHOLD for x, y in zip(ia, ib)], bool)
        a, b = a[keep], b[keep]
    found = graph.union_find_labels(a, b)
    return np.array([found.get(i, i) for i in range(len(texts))])


def _bucket_ids(ids: list[str], texts: list[str]) -> set[str]:
    """Ids of the page copied 1,000 times (the most common text)."""
    common, _ = Counter(texts).most_common(1)[0]
    return {i for i, t in zip(ids, texts) if t == common}


def _without(path: str, drop: set[str], folder: str, name: str) -> str:
    """A copy of a corpus or truth file without the given ids."""
    out = os.path.join(folder, name)
    if path.endswith(".jsonl"):
        with open(path) as f, open(out, "w") as g:
            g.writelines(line for line in f if json.loads(line)["id"] not in drop)
    else:
        truth = json.load(open(path))
        truth["pairs"] = [p for p in truth["pairs"] if p[0] not in drop and p[1] not in drop]
        truth["clusters"] = [[i for i in c if i not in drop] for c in truth["clusters"]]
        truth["clusters"] = [c for c in truth["clusters"] if len(c) > 1]
        json.dump(truth, open(out, "w"))
    return out


def scores(corpus: str, truth: str, predicted: dict[str, str], reduced: tuple[str, str], drop: set[str]) -> dict:
    whole = score(corpus, truth, predicted)
    rest = score(*reduced, {i: c for i, c in predicted.items() if i not in drop})
    keys = ("pair_precision", "pair_recall", "direct_pair_recall", "purity")
    return {"all": {k: round(whole[k], 4) for k in keys}, "without_copied_page": {k: round(rest[k], 4) for k in keys},
            "predicted_clusters": whole["predicted_clusters"], "truth_clusters": whole["truth_clusters"]}


def run_beam(corpus: str, beam_args: list[str]) -> tuple[dict[str, str], float, dict]:
    import pyarrow.parquet as pq
    from pipeline.run import run
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "run")
        started = time.perf_counter()
        manifest = run(["--input", corpus, "--output", out, "--mode", "tag", *beam_args], report=False)
        seconds = time.perf_counter() - started
        table = pq.read_table(os.path.join(out, "documents"), columns=["id", "dup_cluster_id"]).to_pydict()
    return dict(zip(table["id"], table["dup_cluster_id"])), seconds, manifest["stages"]["dedup"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="folder with corpus.jsonl and truth.json")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-beam", action="store_true")
    parser.add_argument("--beam-args", default="", help="extra `firsthand run` options, one string")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    corpus, truth = os.path.join(args.dir, "corpus.jsonl"), os.path.join(args.dir, "truth.json")
    ids, texts = read_corpus(corpus)
    drop = _bucket_ids(ids, texts)
    results: dict = {"corpus": corpus, "documents": len(ids), "copied_page_copies": len(drop), "sweep": [], "beam": None}
    with tempfile.TemporaryDirectory() as folder:
        reduced = (_without(corpus, drop, folder, "corpus.jsonl"), _without(truth, drop, folder, "truth.json"))
        if not args.skip_sweep:
            for bands, rows, verify, perms in SWEEP:
                started = time.perf_counter()
                labels = simulate(texts, bands, rows, verify, perms)
                predicted = {i: str(label) for i, label in zip(ids, labels)}
                row = {"bands": bands, "rows": rows, "verify": verify, "permutations": perms,
                       "seconds": round(time.perf_counter() - started, 1),
                       **scores(corpus, truth, predicted, reduced, drop)}
                results["sweep"].append(row)
                print(json.dumps(row), flush=True)
        if not args.skip_beam:
            predicted, seconds, dedup = run_beam(corpus, args.beam_args.split())
            results["beam"] = {"args": args.beam_args, "seconds": round(seconds, 1), "dedup_stage": dedup,
                               **scores(corpus, truth, predicted, reduced, drop)}
            print(json.dumps(results["beam"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
