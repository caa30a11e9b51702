"""Array kernels for LSH buckets and connected components: plain numpy, no Beam.

Nodes are 64-bit record keys (uint64). An edge list is two equal-length uint64 arrays.
The Beam wrappers in `pipeline.neardup` send each partition's arrays to one call here.

Connected components follow Kiveris et al., "Connected Components in MapReduce and
Beyond" (SoCC 2014): alternating large-star and small-star rounds turn every component
into a star centred on its smallest node. Each round is linear in the edges.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

U64 = np.uint64


def empty_edges() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, U64), np.zeros(0, U64)


def concat(parts: Iterable[tuple[np.ndarray, ...]], width: int) -> tuple[np.ndarray, ...]:
    """Column-wise concatenation of the first `width` arrays of each tuple."""
    parts = list(parts)
    if not parts:
        return tuple(np.zeros(0, U64) for _ in range(width))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(width))


def partition_of(keys: np.ndarray, num_partitions: int) -> np.ndarray:
    return (keys % U64(num_partitions)).astype(np.int64)


def split_by_partition(keys: np.ndarray, arrays: tuple[np.ndarray, ...], num_partitions: int
                       ) -> list[tuple[int, tuple[np.ndarray, ...]]]:
    """[(partition, arrays restricted to the rows whose key falls in it)], non-empty ones only."""
    if len(keys) == 0:
        return []
    parts = partition_of(keys, num_partitions)
    order = np.argsort(parts, kind="stable")
    parts = parts[order]
    out = []
    for lo, size in zip(*_groups(parts)):
        rows = order[lo:lo + size]
        out.append((int(parts[lo]), tuple(a[rows] for a in arrays)))
    return out


def pack(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length arrays as one (values, offsets) pair: one element to shuffle, not many."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in arrays], out=offsets[1:])
    values = np.concatenate(arrays) if arrays else np.zeros(0, np.uint32)
    return values, offsets


def unpack(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [values[lo:hi] for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def take_packed(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The packed sub-list of the given rows, in that order."""
    starts, sizes = offsets[rows], offsets[rows + 1] - offsets[rows]
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(sizes, out=new_offsets[1:])
    index = np.repeat(starts - new_offsets[:-1], sizes) + np.arange(new_offsets[-1])
    return values[index], new_offsets


def concat_packed(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Packed lists one after another, as one packed list."""
    if not parts:
        return np.zeros(0, np.uint32), np.zeros(1, np.int64)
    values = np.concatenate([v for v, _ in parts])
    shifts = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    offsets = np.concatenate([[0]] + [o[1:] + shift for (_, o), shift in zip(parts, shifts)]).astype(np.int64)
    return values, offsets


def replace_packed(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray, singles: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The packed list with each given row's array replaced by one value."""
    arrays = unpack(values, offsets)
    for row, value in zip(rows.tolist(), singles):
        arrays[row] = np.array([value], dtype=values.dtype)
    return pack(arrays)


def _run_starts(*columns: np.ndarray) -> np.ndarray:
    """For rows sorted by these columns: True where a row differs from the one before."""
    if len(columns[0]) == 0:
        return np.zeros(0, bool)
    changed = np.zeros(len(columns[0]) - 1, bool)
    for column in columns:
        changed |= column[1:] != column[:-1]
    return np.r_[True, changed]


def unique_edges(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs, sorted, self-loops dropped."""
    keep = a != b
    a, b = a[keep], b[keep]
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    first = _run_starts(a, b)
    return a[first], b[first]


def distinct_halves(a: np.ndarray, b: np.ndarray, firsts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each half-edge (a, b, at its first end or not) once, sorted. A pair that shares
    several LSH bands is proposed once per band (~3.6 times on the benchmark corpus); all
    copies of a half meet at its end's partition, so dropping them there is complete."""
    order = np.lexsort((firsts, b, a))
    a, b, firsts = a[order], b[order], firsts[order]
    first = _run_starts(a, b, firsts)
    return a[first], b[first], firsts[first]


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and size of each run of equal values in a sorted array."""
    starts = np.flatnonzero(_run_starts(keys))
    sizes = np.diff(np.r_[starts, len(keys)])
    return starts, sizes


def star_edges(buckets: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Link every member of a bucket to the bucket's smallest member: a bucket of n members
    costs n - 1 edges, never n^2/2. Returns (member, anchor) edges, deduplicated."""
    if len(buckets) == 0:
        return empty_edges()
    # one sort by bucket alone (a lexsort by bucket and member took twice as long), and the
    # pairs sort only for shared buckets: most band keys are a bucket of one, which links nothing
    order = np.argsort(buckets)
    buckets, members = buckets[order], members[order]
    _, sizes = _groups(buckets)
    shared = sizes > 1
    members, sizes = members[np.repeat(shared, sizes)], sizes[shared]
    if not len(sizes):
        return empty_edges()
    anchors = np.repeat(np.minimum.reduceat(members, np.cumsum(sizes) - sizes), sizes)
    return unique_edges(members, anchors)


def _by_node(node: np.ndarray, other: np.ndarray):
    """Deduplicated adjacency sorted by node; per-node start, size and neighbour minimum."""
    node, other = unique_edges(node, other)
    starts, sizes = _groups(node)
    smallest = np.minimum.reduceat(other, starts) if len(starts) else np.zeros(0, U64)
    return node, other, starts, sizes, smallest


def large_star(node: np.ndarray, neighbor: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """One large-star step over a complete adjacency (both directions of each edge present
    for every node in this call): each neighbour larger than the node is re-linked to the
    smallest node of the neighbourhood. Returns the new edges and how many nodes are not
    yet settled (a settled node is a star centre, all neighbours larger, or a leaf, one
    smaller neighbour); zero everywhere means every component is a star."""
    if len(node) == 0:
        return empty_edges(), 0
    node, other, starts, sizes, smallest = _by_node(node, neighbor)
    owner_min = np.repeat(np.minimum(smallest, node[starts]), sizes)
    larger = other > node
    settled = (smallest > node[starts]) | ((sizes == 1) & (smallest < node[starts]))
    return (other[larger], owner_min[larger]), int(np.count_nonzero(~settled))


def small_star(node: np.ndarray, smaller: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One small-star step; each edge arrives at its larger end (node > smaller). The node
    and all its smaller neighbours are linked to the smallest of them."""
    if len(node) == 0:
        return empty_edges()
    node, other, starts, sizes, smallest = _by_node(node, smaller)
    owners = node[starts]
    members = np.concatenate([other, owners])
    anchors = np.concatenate([np.repeat(smallest, sizes), smallest])
    return unique_edges(members, anchors)


def settle(node: np.ndarray, neighbor: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Final pass over a complete adjacency: labels for settled nodes (a centre labels
    itself, a leaf takes its centre), and the edges of unsettled nodes, which the caller
    finishes with `union_find_labels` on one worker. Returns ((nodes, labels), (a, b))."""
    if len(node) == 0:
        return empty_edges(), empty_edges()
    node, other, starts, sizes, smallest = _by_node(node, neighbor)
    owners = node[starts]
    centre = smallest > owners
    leaf = (sizes == 1) & (smallest < owners)
    labels = np.where(leaf, smallest, owners)
    unsettled_rows = np.repeat(~(centre | leaf), sizes)
    return (owners, labels), (node[unsettled_rows], other[unsettled_rows])


def union_find_labels(a: np.ndarray, b: np.ndarray) -> dict[int, int]:
    """Smallest node of each component of a (small) edge list, for every node in it."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    return {x: find(x) for x in set(a.tolist()) | set(b.tolist())}
