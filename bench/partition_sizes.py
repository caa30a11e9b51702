"""What sorting and hashing cost per element as a shuffle partition grows ten times.

    .venv/bin/python bench/partition_sizes.py

The dedup stage's partition count does not grow with the input (the benchmarks fix 8;
`firsthand run` uses max(8, 2 x --num-shards)), so each partition's share does: at 100k
documents a partition sorts ~175,000 band records (14 bands x 12,500 documents), at 1M ten
times as many. This times the two per-partition operations whose cost per element grows
with the partition, best of 5, at both partition sizes: the sort of band keys in
`pipeline.graph.star_edges` (beside the lexsort it replaced), and how verification finds
a document's shingle set in its partition (`PartitionSketches.take`, a binary search over
sorted keys, beside the Python dict of spans it replaced). README, near-duplicate scaling,
quotes it to explain the marginal cost per document from 100k to 1M.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import graph  # noqa: E402
from pipeline.lsh import PartitionSketches  # noqa: E402

BANDS = 14


def lexsort_star_edges(buckets: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How star_edges worked before e91995e, for comparison: one lexsort by bucket and member
    over every band record, singleton buckets included."""
    order = np.lexsort((members, buckets))
    buckets, members = buckets[order], members[order]
    starts, sizes = graph._groups(buckets)
    anchors = np.repeat(members[starts], sizes)
    return graph.unique_edges(members, anchors)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    for docs in (12_500, 125_000):  # one of 8 partitions at 100k and at 1M documents
        records = docs * BANDS
        buckets = rng.integers(0, 2**63, records, dtype=np.uint64)
        buckets[: records // 10] = buckets[: records // 100].repeat(10)  # a tenth of records share a bucket
        members = rng.integers(0, 2**63, records, dtype=np.uint64)
        sort_s = best_of(5, lambda: graph.star_edges(buckets, members))
        lexsort_s = best_of(5, lambda: lexsort_star_edges(buckets, members))
        assert all(np.array_equal(x, y) for x, y in zip(graph.star_edges(buckets, members),
                                                         lexsort_star_edges(buckets, members)))
        keys = members[:docs]
        wanted = rng.permutation(keys)
        spans = {key: (i, i + 1) for i, key in enumerate(keys.tolist())}
        dict_s = best_of(5, lambda: [spans[k] for k in wanted.tolist()])
        sketches = PartitionSketches([(keys, np.arange(docs, dtype=np.uint32), np.arange(docs + 1))])
        take_s = best_of(5, lambda: sketches.take(wanted))
        print(json.dumps({"documents_per_partition": docs, "band_records": records,
                          "star_edges_ns_per_record": round(1e9 * sort_s / records, 1),
                          "lexsort_star_edges_ns_per_record": round(1e9 * lexsort_s / records, 1),
                          "sketch_lookup_ns": round(1e9 * take_s / docs, 1),
                          "dict_lookup_ns": round(1e9 * dict_s / docs, 1)}))


if __name__ == "__main__":
    main()
