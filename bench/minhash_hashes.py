"""Shingle hash function and MinHash permutation scheme: the speed and accuracy of each choice, side by side.

Answers the issue's "MinHash signatures with datasketch (use its vectorised batch path or LeanMinHash,
with a fast hash function; measure the choices)". Every variant turns the same texts into 112-value
signatures of the same shingles: word 5-grams of detectors.minhash.normalize_for_shingling text
(MinHashConfig defaults: ngram 5, num_perm 112, seed 1; datasketch gets the UTF-8 bytes of
detectors.minhash.shingles). Rows, each timed on all documents:

  project signatures     MinHasher.signatures: 64-bit polynomial substring hash of every shingle of the
                         batch in numpy (top 32 bits after a mix), then affine32 permutations on one array
  project shingle_hashes its hashing part alone (normalise + shingle + hash are one pass there)
  shingles()+encode      the datasketch rows' input, shared by all of them (included in their totals)
  hash only <h>          <h> over every shingle's bytes: the hashing part of the datasketch rows
  ds <h> update_batch    MinHash(num_perm=112, seed=1, hashfunc=<h>) per document + update_batch
  ds <h> bulk            MinHash.bulk: one permutation set, copied per document
  ds <h> bulk+lean       the same, each frozen into a LeanMinHash
  LeanMinHash freeze only  LeanMinHash(m) of ready MinHash objects: the freezing alone
  perm <scheme>          permutations alone on precomputed sha1 hashes: the project's
                         signatures_from_hashes, and MinHash.bulk(hashfunc=int, scheme=...) for
                         datasketch 2.0's affine32 (default), affine64 and legacy (mod 2**61-1, cut to 32 bits)
with <h>: sha1 (datasketch's default sha1_hash32), xxh32 (xxhash.xxh32_intdigest), xxh3
(xxhash.xxh3_64_intdigest & 0xFFFFFFFF). Repeats are interleaved, the row order rotated each repeat.

Quality of each hash: (a) colliding pairs of 32-bit hashes among the sample's distinct shingles, beside
the birthday expectation n(n-1)/2**33; (b) mean absolute error (and bias) of the 112-permutation Jaccard
estimate against exact shingle Jaccard, on up to 1,000 pairs sharing an LSH band (14 x 8) in the sample
topped up to 2,000 with pairs made by replacing 0-30% of a text's words with fresh tokens. Quality
columns are left blank on the perm rows (the legacy scheme's estimates differ from affine32's).
Checks: the project's affine32 equals datasketch's bit for bit on the same hashes; update_batch, bulk
and bulk+lean agree.

    /work/bench-venvs/hashes/bin/python bench/minhash_hashes.py --corpus /tmp/ndc20k/corpus.jsonl \\
        --limit 5000 --repeats 3 --out /tmp/minhash_hashes.json

Setup of the benchmark-only venv (xxhash is no project dependency; detectors.minhash needs only numpy
and datasketch and is imported from this tree):

    python3 -m venv /work/bench-venvs/hashes
    /work/bench-venvs/hashes/bin/pip install 'datasketch==2.0.0' 'numpy>=2.0' xxhash

Where xxhash cannot be imported, its rows are skipped with a printed note.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from datasketch import LeanMinHash, MinHash  # noqa: E402
from datasketch.hashfunc import sha1_hash32  # noqa: E402

from detectors.minhash import (MinHashConfig, MinHasher, estimated_jaccard, has_shingles, jaccard,  # noqa: E402
                               shingle_hashes, shingles)

CONFIG = MinHashConfig()  # 5-gram words, 112 = 14 x 8, seed 1
HASHES: dict[str, Callable[[bytes], int]] = {"sha1": sha1_hash32}
try:
    import xxhash

    def xxh3_32(data: bytes) -> int:
        return xxhash.xxh3_64_intdigest(data) & 0xFFFFFFFF

    HASHES.update(xxh32=xxhash.xxh32_intdigest, xxh3=xxh3_32)
except ImportError:
    print("note: xxhash is not importable in this python: the xxh32 and xxh3 rows are skipped "
          "(the module docstring sets up a venv with it)")
MODES = ("update_batch", "bulk", "bulk+lean")


def load_texts(path: str, limit: int) -> list[str]:
    texts: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
                if len(texts) == limit:
                    break
    return texts


def shingle_bytes(texts: Sequence[str]) -> list[list[bytes]]:
    return [[s.encode("utf-8") for s in shingles(t, CONFIG)] for t in texts]


def ds_signatures(docs: Sequence[list], mode: str, **kwargs: object) -> np.ndarray:
    """(documents, num_perm) datasketch signatures of per-document lists of values."""
    if mode == "update_batch":
        sketches = []
        for doc in docs:
            m = MinHash(num_perm=CONFIG.num_perm, seed=CONFIG.seed, **kwargs)
            m.update_batch(doc)
            sketches.append(m)
    else:
        sketches = MinHash.bulk(docs, num_perm=CONFIG.num_perm, seed=CONFIG.seed, **kwargs)
        if mode == "bulk+lean":
            sketches = [LeanMinHash(m) for m in sketches]
    return np.stack([m.hashvalues for m in sketches])


def colliding_pairs(hashes: np.ndarray) -> int:
    counts = np.unique(hashes, return_counts=True)[1].astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def quality_pairs(texts: list[str], hasher: MinHasher, rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """Up to n pairs of sample texts sharing an LSH band, then (text, text with 0-30% of its words replaced)
    pairs up to 2n in all."""
    signatures = hasher.signatures(texts)
    keys, ok = hasher.band_keys(signatures), has_shingles(signatures)
    found: set[tuple[int, int]] = set()
    for band in range(keys.shape[1]):
        first: dict[int, int] = {}
        for i, key in enumerate(keys[:, band].tolist()):
            if ok[i] and (j := first.setdefault(key, i)) != i:
                found.add((j, i))
    candidates = sorted(found)
    picked = rng.choice(len(candidates), size=min(n, len(candidates)), replace=False) if candidates else []
    pairs = [(texts[candidates[p][0]], texts[candidates[p][1]]) for p in sorted(picked)]
    edits = 2 * n - len(pairs)
    for i in rng.choice(len(texts), size=edits, replace=len(texts) < edits):
        words, rate = texts[i].split(), rng.uniform(0.0, 0.3)
        edited = [f"zq{rng.integers(1 << 40)}" if rng.random() < rate else w for w in words]
        pairs.append((texts[i], " ".join(edited)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="JSON Lines of {id, text}")
    parser.add_argument("--limit", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=1000, help="LSH-candidate pairs at most; 2x this in all")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    texts = load_texts(args.corpus, args.limit)
    hasher = MinHasher(CONFIG)

    # Inputs precomputed once, outside the timings of the rows that take them.
    docs = shingle_bytes(texts)
    flat = [s for doc in docs for s in doc]
    sha1_docs = [[sha1_hash32(s) for s in doc] for doc in docs]
    sha1_flat = np.fromiter((h for doc in sha1_docs for h in doc), dtype=np.uint32, count=len(flat))
    owner = np.repeat(np.arange(len(docs)), [len(doc) for doc in docs])

    rows: dict[str, tuple[str, Callable[[], object]]] = {  # name -> (hash it uses, work)
        "project signatures": ("project", lambda: hasher.signatures(texts)),
        "project shingle_hashes": ("project", lambda: shingle_hashes(texts, CONFIG)),
        "shingles()+encode": ("", lambda: shingle_bytes(texts)),
    }
    for name, fn in HASHES.items():
        rows[f"hash only {name}"] = (name, lambda fn=fn: [fn(s) for s in flat])
    for name, fn in HASHES.items():
        for mode in MODES:
            rows[f"ds {name} {mode}"] = (name, lambda fn=fn, mode=mode: ds_signatures(shingle_bytes(texts), mode,
                                                                                      hashfunc=fn))
    rows["perm project affine32 (batch)"] = ("sha1", lambda: hasher.signatures_from_hashes(sha1_flat, owner,
                                                                                            len(docs)))
    frozen = MinHash.bulk(sha1_docs, num_perm=CONFIG.num_perm, seed=CONFIG.seed, hashfunc=int)
    rows["LeanMinHash freeze only"] = ("", lambda: [LeanMinHash(m) for m in frozen])
    for scheme in ("affine32", "affine64", "legacy"):
        rows[f"perm ds {scheme} (bulk)"] = ("sha1", lambda scheme=scheme: ds_signatures(sha1_docs, "bulk",
                                                                                         hashfunc=int, scheme=scheme))

    hasher.signatures(texts)  # warm the project's cached power table (sized to the batch) and permutations
    names = list(rows)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, object] = {}
    for repeat in range(args.repeats):  # interleaved and rotated, so drift on a shared machine hits all alike
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            started = time.perf_counter()
            outputs[name] = rows[name][1]()
            seconds[name].append(time.perf_counter() - started)

    # Same hashes in, same signatures out? And the three datasketch modes of one hash agree?
    distinct = sorted({s for doc in docs for s in doc})
    project_of = shingle_hashes([s.decode("utf-8") for s in distinct], CONFIG)[0]
    assert len(project_of) == len(distinct), "a distinct shingle did not hash to exactly one shingle"
    lookup = dict(zip(distinct, project_of.tolist()))
    checks = {
        "project_affine32_equals_datasketch_on_sha1_hashes": bool(np.array_equal(
            outputs["perm project affine32 (batch)"], outputs["perm ds affine32 (bulk)"])),
        "project_signatures_equal_datasketch_with_project_hash": bool(np.array_equal(
            outputs["project signatures"], ds_signatures(docs, "bulk", hashfunc=lookup.__getitem__))),
        "datasketch_modes_agree": all(np.array_equal(outputs[f"ds {h} {MODES[0]}"], outputs[f"ds {h} {m}"])
                                      for h in HASHES for m in MODES[1:]),
    }

    # Quality: 32-bit collisions among distinct shingles, and Jaccard estimate error on pairs.
    collisions = {"project": colliding_pairs(project_of)}
    collisions.update({h: colliding_pairs(np.fromiter((fn(s) for s in distinct), np.uint32, len(distinct)))
                       for h, fn in HASHES.items()})
    pairs = quality_pairs(texts, hasher, np.random.default_rng(0), args.pairs)
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    sets_l, sets_r = [shingles(t, CONFIG) for t in left], [shingles(t, CONFIG) for t in right]
    keep = np.array([bool(a and b) for a, b in zip(sets_l, sets_r)])
    exact = np.array([jaccard(a, b) for a, b in zip(sets_l, sets_r)])[keep]
    estimates = {"project": estimated_jaccard(hasher.signatures(left), hasher.signatures(right))}
    bytes_l, bytes_r = shingle_bytes(left), shingle_bytes(right)
    estimates.update({h: estimated_jaccard(ds_signatures(bytes_l, "bulk", hashfunc=fn),
                                           ds_signatures(bytes_r, "bulk", hashfunc=fn)) for h, fn in HASHES.items()})
    mae = {h: float(np.abs(e[keep] - exact).mean()) for h, e in estimates.items()}
    bias = {h: float((e[keep] - exact).mean()) for h, e in estimates.items()}

    n = len(texts)
    reference = statistics.median(seconds["project signatures"])
    table = {}
    for name in names:
        hash_name, median, perm = rows[name][0], statistics.median(seconds[name]), name.startswith("perm")
        table[name] = {"hash": hash_name, "seconds": [round(s, 4) for s in seconds[name]],
                       "docs_per_s": round(n / median), "docs_per_s_min": round(n / max(seconds[name])),
                       "docs_per_s_max": round(n / min(seconds[name])),
                       "speed_vs_project": round(reference / median, 3),
                       "colliding_pairs": None if perm else collisions.get(hash_name),
                       "mae": None if perm else mae.get(hash_name)}
    print(f"{n} documents, {len(flat)} shingles ({len(distinct)} distinct; expected 32-bit colliding pairs "
          f"{len(distinct) * (len(distinct) - 1) / 2**33:.1f}), {int(keep.sum())} pairs, mean exact Jaccard "
          f"{exact.mean():.3f}; medians of {args.repeats} repeats")
    print(f"{'variant':32} {'docs/s':>9} {'min-max':>17} {'x project':>9} {'coll.':>6} {'MAE':>7}")
    for name, row in table.items():
        coll = "" if row["colliding_pairs"] is None else row["colliding_pairs"]
        err = "" if row["mae"] is None else f"{row['mae']:.4f}"
        print(f"{name:32} {row['docs_per_s']:>9} {row['docs_per_s_min']:>8}-{row['docs_per_s_max']:<8} "
              f"{row['speed_vs_project']:>9.3f} {coll:>6} {err:>7}")
    print("bias (mean estimate - exact):", {h: round(b, 4) for h, b in bias.items()})
    print("checks:", checks)
    result = {
        "corpus": args.corpus, "documents": n, "shingles": len(flat), "distinct_shingles": len(distinct),
        "expected_colliding_pairs": len(distinct) * (len(distinct) - 1) / 2**33, "repeats": args.repeats,
        "quality_pairs": int(keep.sum()), "mean_exact_jaccard": float(exact.mean()), "rows": table,
        "mae": mae, "bias": bias, "colliding_pairs": collisions, "checks": checks,
        "versions": {p: version(p) for p in ("datasketch", "numpy", *(("xxhash",) if len(HASHES) > 1 else ()))},
        "python": sys.version.split()[0],
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
