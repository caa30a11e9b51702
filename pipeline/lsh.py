"""Beam wiring for MinHash LSH: band keys, bucket edges, optional verification and
connected components. The arithmetic lives in detectors.minhash and pipeline.graph.

Every shuffle here is batched (see pipeline.batching): elements are
(partition, tuple of numpy arrays). Edges are (a, b) uint64 array pairs. Where one
shuffle carries two kinds of piece (band keys and sketches; edge halves and sketches),
each piece is (kind, arrays...) with kind one of BANDS, SKETCHES, HALVES.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from detectors.minhash import (
    MinHashConfig, MinHasher, bottom_k_sets, has_shingles, mix64, set_similarity, shingle_hashes,
)
from pipeline import graph
from pipeline.batching import BufferedFn, PartitionBuffers
from pipeline.read import NAMESPACE

BANDS, SKETCHES, HALVES = "bands", "sketches", "halves"  # what a batched piece carries
VERIFY_SHINGLES, VERIFY_SIGNATURE = "shingles", "signature"
VERIFY_CHOICES = (VERIFY_SHINGLES, VERIFY_SIGNATURE)
# how the shingle sets reach verification's join; results are the same either way
SETS_VIA_BUCKETS = "buckets"  # ride the band-key shuffle: one producer, no Flatten (local runners)
SETS_VIA_FLATTEN = "flatten"  # straight from the band keys: one shuffle fewer (runners that fuse Flattens)
SETS_ROUTES = (SETS_VIA_BUCKETS, SETS_VIA_FLATTEN)
REPORTS = "reports"
UNSETTLED = "unsettled"
SET_LIMIT = 1024  # shingle hashes per document for set verification: exact below, bottom-k above
_log = logging.getLogger("firsthand.dedup")
_TEXT_BAND_SALT = np.uint64(0xD6E8FEB86659FD93)
BAND_BATCH = 1024  # documents shingled and hashed together: their (permutations x shingles) array is ~30 MB
# band keys and sketches held for batching by partition, in batches of documents: ~80 MB for
# 1.4 KB texts, ~300 MB at most (sets are capped at SET_LIMIT hashes)
HELD_BATCHES = 64


@dataclass(frozen=True)
class DedupConfig:
    """What the dedup stage does; the defaults are the measured defaults (see README)."""
    near: bool = True                     # False: exact duplicates only (identical normalised text)
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    verify: str | None = VERIFY_SHINGLES   # how candidate pairs are checked before clustering; None: not
    threshold: float = 0.8                 # Jaccard similarity a verified pair must reach
    cc_rounds: int = 8                     # large-star/small-star rounds before the one-worker finish
    partitions: int = 8                    # batched-shuffle partitions; results do not depend on it
    sets_route: str = SETS_VIA_BUCKETS     # see SETS_VIA_*; `firsthand run` picks it by runner

    def __post_init__(self) -> None:
        if self.sets_route not in SETS_ROUTES:
            raise ValueError(f"sets_route must be one of {SETS_ROUTES}, not {self.sets_route!r}")

    @property
    def verifies(self) -> bool:
        """Candidate pairs are checked before clustering (near dedup with verification on)."""
        return self.near and self.verify is not None


def dedup_report(stage: str, **counts: int) -> dict[str, Any]:
    """An in-band report the manifest sums into stages.dedup."""
    return {"report": "dedup", "stage": stage, "counts": counts}


def text_band_keys(text_hashes: list[str]) -> np.ndarray:
    """One band key per document from its normalised-text hash: identical texts collide."""
    prefixes = np.array([int(h[:16], 16) for h in text_hashes], dtype=np.uint64)
    return mix64(prefixes ^ _TEXT_BAND_SALT)


def _tagged(kind: str, pieces: Iterable[tuple[int, tuple]]) -> list[tuple[int, tuple]]:
    return [(p, (kind, *piece)) for p, piece in pieces]


def split_pieces(pieces: Iterable[tuple], kind: str) -> tuple[list[tuple], list[tuple]]:
    """(arrays of the `kind` pieces, arrays of the SKETCHES pieces); any other kind is a bug."""
    wanted, sketches = [], []
    for piece_kind, *arrays in pieces:
        if piece_kind not in (kind, SKETCHES):
            raise RuntimeError(f"internal error: a {piece_kind!r} piece where {kind!r} or sketches belong; "
                               "please report this")
        (sketches if piece_kind == SKETCHES else wanted).append(arrays)
    return wanted, sketches


def is_sketch_piece(element: tuple[int, tuple], _: int = 2) -> int:
    """beam.Partition's function: 1 for a sketch piece, 0 for the rest."""
    return int(element[1][0] == SKETCHES)


class BandKeysFn(BufferedFn):
    """Documents -> (partition, (BANDS, band keys, record keys)); with verification also
    (partition, (SKETCHES, record keys, packed sketch values, offsets)), partitioned by
    record key. Both leave on the one output (see BucketEdgesFn for where the sketches go).

    A document with shingles gets one key per LSH band; one too short to shingle gets a
    single key from its text hash, so its exact copies still meet. Exact copies of a
    shingled document share every band key, so they need no key of their own.
    """

    def __init__(self, config: DedupConfig, max_items: int | None = None):
        super().__init__(max_items or BAND_BATCH)
        self._config = config
        self._signed = Metrics.counter(NAMESPACE, "dedup.signed_documents")
        self._too_short = Metrics.counter(NAMESPACE, "dedup.too_short_to_shingle")
        # counted where band records are made; the LSH report counts them where they are grouped,
        # and the run checks the two agree (a runner that drops data fails the run, not the clusters)
        self._band_records = Metrics.counter(NAMESPACE, "dedup.band_records")
        self._hasher: MinHasher | None = None

    def setup(self) -> None:
        self._hasher = MinHasher(self._config.minhash)

    def start_bundle(self) -> None:
        super().start_bundle()
        bands = self._max_items * self._config.minhash.bands  # band records of about one batch
        self._bands = PartitionBuffers(bands, HELD_BATCHES * bands, lambda piece: len(piece[0]),
                                       lambda pieces: graph.concat(pieces, 2))
        self._sketches = PartitionBuffers(self._max_items, HELD_BATCHES * self._max_items,
                                          lambda piece: len(piece[0]), _concat_sketches)

    def drain(self) -> list[Any]:
        return _tagged(BANDS, self._bands.drain()) + _tagged(SKETCHES, self._sketches.drain())

    def flush(self, batch: list[dict[str, Any]]) -> Iterator[Any]:
        config = self._config
        keys = np.array([d["key"] for d in batch], dtype=np.uint64)
        signed = np.zeros(len(batch), dtype=bool)
        band_keys, members = [], []
        if config.near:
            hashes, owner = shingle_hashes([d["text"] for d in batch], config.minhash)
            signatures = self._hasher.signatures_from_hashes(hashes, owner, len(batch))
            signed = has_shingles(signatures)
            bands = self._hasher.band_keys(signatures[signed])
            band_keys.append(bands.ravel())
            members.append(np.repeat(keys[signed], bands.shape[1]))
            self._signed.inc(int(signed.sum()))
            self._too_short.inc(int((~signed).sum()))
            if config.verify == VERIFY_SIGNATURE:
                width = signatures.shape[1]
                values, offsets = signatures.ravel(), np.arange(len(batch) + 1, dtype=np.int64) * width
            elif config.verify == VERIFY_SHINGLES:
                values, offsets = bottom_k_sets(hashes, owner, len(batch), SET_LIMIT)
        unsigned = np.flatnonzero(~signed)
        text_keys = text_band_keys([batch[i]["text_hash"] for i in unsigned])
        band_keys.append(text_keys)
        members.append(keys[unsigned])
        if config.verifies:
            if len(unsigned):  # one value from the text key: equal only for equal texts, as the key is
                values, offsets = graph.replace_packed(values, offsets, unsigned,
                                                       (text_keys >> np.uint64(32)).astype(values.dtype))
            for p, (part_keys, rows) in graph.split_by_partition(keys, (keys, np.arange(len(keys))),
                                                                 config.partitions):
                piece = (part_keys, *graph.take_packed(values, offsets, rows))
                yield from _tagged(SKETCHES, self._sketches.add(p, piece))
        all_keys, all_members = np.concatenate(band_keys), np.concatenate(members)
        self._band_records.inc(len(all_keys))
        for p, piece in graph.split_by_partition(all_keys, (all_keys, all_members), config.partitions):
            yield from _tagged(BANDS, self._bands.add(p, piece))


def _concat_sketches(pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    values, offsets = graph.concat_packed([(v, o) for _, v, o in pieces])
    keys = np.concatenate([k for k, _, _ in pieces]) if pieces else np.zeros(0, np.uint64)
    return keys, values, offsets


def _by_both_ends(edges: tuple[np.ndarray, np.ndarray], parts: int):
    """Each edge as two halves, one at each end's partition: (a, b, end is a)."""
    a, b = edges
    ends, firsts = np.concatenate([a, b]), np.r_[np.ones(len(a), bool), np.zeros(len(b), bool)]
    return graph.split_by_partition(ends, (np.concatenate([a, a]), np.concatenate([b, b]), firsts), parts)


class BucketEdgesFn(beam.DoFn):
    """(partition, [band and sketch pieces]) -> star edges of every bucket in the partition.

    With verification (`halves_partitions` given) each edge leaves as two halves keyed by
    each end's partition (HALVES pieces) for verification's join, and sketches that rode
    the bucket shuffle (SETS_VIA_BUCKETS) pass through unchanged beside them, so that one
    stage produces the join's whole input. Two producers need a Flatten, which FnApiRunner
    materialises as a stage of its own: one more copy of every sketch, and the stage where
    two local worker processes lost data (README, near-duplicate section). Runners that
    fuse Flattens save the second shuffle of the sketches instead (SETS_VIA_FLATTEN)."""

    def __init__(self, halves_partitions: int | None = None) -> None:
        self._halves_partitions = halves_partitions
        self._edges = Metrics.counter(NAMESPACE, "dedup.candidate_edges")

    def process(self, element: tuple[int, Iterable[tuple]]):
        bands, sketches = split_pieces(element[1], BANDS)
        yield from _tagged(SKETCHES, ((element[0], arrays) for arrays in sketches))
        buckets, members = graph.concat(bands, 2)
        a, b = graph.star_edges(buckets, members)
        self._edges.inc(len(a))
        yield beam.pvalue.TaggedOutput(REPORTS, dedup_report("lsh", band_records=len(buckets), candidate_edges=len(a)))
        if not len(a):
            return
        if self._halves_partitions is None:
            yield a, b
        else:
            yield from _tagged(HALVES, _by_both_ends((a, b), self._halves_partitions))


class PartitionSketches:
    """One partition's document sketches, packed, found by document key with a binary search
    (a dict of spans cost 5x more per lookup at 1M documents than at 100k: cache misses)."""

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
        keys, self._values, self._offsets = _concat_sketches(parts)
        self._order = np.argsort(keys, kind="stable")  # a key given twice finds its first sketch
        self._sorted_keys = keys[self._order]

    def take(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sketches of these documents, in this order, packed as (values, offsets)."""
        at = np.minimum(np.searchsorted(self._sorted_keys, nodes), max(len(self._sorted_keys) - 1, 0))
        found = self._sorted_keys[at] == nodes if len(self._sorted_keys) else np.zeros(len(nodes), bool)
        if not found.all():
            raise RuntimeError(f"internal error: an edge names document key {int(nodes[~found][0])} without "
                               "a sketch; please report this")
        return graph.take_packed(self._values, self._offsets, self._order[at])


class AttachSketchesFn(beam.DoFn):
    """First half of verification: each distinct half-edge picks up its end's sketch here,
    where that sketch lives, and moves on to its edge's partition (by the first end)."""

    def __init__(self, parts: int):
        self._parts = parts
        # counted where the halves leave for GroupHalves; Verify reports how many arrived
        self._distinct = Metrics.counter(NAMESPACE, "dedup.distinct_edge_halves")

    def process(self, element) -> Iterator[Any]:  # the hint keeps Beam from typing the tagged report as a main output
        halves, sketches = split_pieces(element[1], HALVES)
        if not halves:
            return
        a, b, firsts = graph.concat(halves, 3)
        received = len(a)
        a, b, firsts = graph.distinct_halves(a, b, firsts)
        self._distinct.inc(len(a))
        yield beam.pvalue.TaggedOutput(REPORTS, dedup_report("verify", edge_halves=received))
        values, offsets = PartitionSketches(sketches).take(np.where(firsts, a, b))
        for p, (pa, pb, pf, rows) in graph.split_by_partition(a, (a, b, firsts, np.arange(len(a))), self._parts):
            yield p, (pa, pb, pf, *graph.take_packed(values, offsets, rows))


class VerifyEdgesFn(beam.DoFn):
    """Second half: the two halves of each edge meet; keep edges at or above the threshold."""

    def __init__(self, config: DedupConfig):
        self._kind, self._threshold = config.verify, config.threshold
        self._dropped = Metrics.counter(NAMESPACE, "dedup.verification_dropped_edges")

    def _similarity(self, x: np.ndarray, y: np.ndarray) -> float:
        if self._kind == VERIFY_SIGNATURE:
            return float(np.count_nonzero(x == y)) / len(x) if len(x) == len(y) else 0.0
        return set_similarity(x, y, SET_LIMIT)

    def process(self, element):
        halves = list(element[1])
        a, b, firsts = graph.concat(halves, 3)
        received = len(a)  # the run checks this against dedup.distinct_edge_halves
        values, offsets = graph.concat_packed([(h[3], h[4]) for h in halves])
        order = np.lexsort((~firsts, b, a))  # per edge: its first end's half, then its second's
        a, b, firsts = a[order], b[order], firsts[order]
        if len(a) % 2 or not (firsts[0::2].all() and not firsts[1::2].any()
                              and np.array_equal(a[0::2], a[1::2]) and np.array_equal(b[0::2], b[1::2])):
            raise RuntimeError("internal error: an edge lost one of its halves in verification; please report this")
        sketches = graph.unpack(*graph.take_packed(values, offsets, order))
        keep = np.array([self._similarity(x, y) >= self._threshold
                         for x, y in zip(sketches[0::2], sketches[1::2])], dtype=bool)
        dropped = int((~keep).sum())
        self._dropped.inc(dropped)
        yield beam.pvalue.TaggedOutput(REPORTS, dedup_report("verify", distinct_edge_halves=received,
                                                              dropped_edges=dropped))
        if keep.any():
            yield a[0::2][keep], b[0::2][keep]


class VerifyEdges(beam.PTransform):
    """Edge halves and sketches, keyed by partition (BucketEdgesFn with `halves_partitions`)
    -> (the edges whose ends are similar enough, reports).

    Each edge is split into two halves that pick up their end's sketch where it lives
    (once per distinct half, however many bands proposed the edge), then the halves meet
    by edge. So a document without a candidate edge costs its sketch's trip to the join
    (through the bucket shuffle too, on the SETS_VIA_BUCKETS route), and no worker holds
    all sketches."""

    def __init__(self, config: DedupConfig):
        super().__init__()
        self._config = config

    def expand(self, halves_and_sketches):
        parts = self._config.partitions
        halves = (halves_and_sketches
                  | "JoinEnds" >> beam.GroupByKey()
                  | "AttachSketches" >> beam.ParDo(AttachSketchesFn(parts)).with_outputs(REPORTS, main="halves"))
        verified = (halves.halves
                    | "GroupHalves" >> beam.GroupByKey()
                    | "Verify" >> beam.ParDo(VerifyEdgesFn(self._config)).with_outputs(REPORTS, main="edges"))
        return verified.edges, (halves[REPORTS], verified[REPORTS]) | "VerifyReports" >> beam.Flatten()


def _both_directions(edges: tuple[np.ndarray, np.ndarray], parts: int):
    a, b = edges
    nodes, others = np.concatenate([a, b]), np.concatenate([b, a])
    return graph.split_by_partition(nodes, (nodes, others), parts)


def _at_larger_end(edges: tuple[np.ndarray, np.ndarray], parts: int):
    a, b = edges
    larger, smaller = np.maximum(a, b), np.minimum(a, b)
    return graph.split_by_partition(larger, (larger, smaller), parts)


class LargeStarFn(beam.DoFn):
    def __init__(self, round_number: int):
        self._round = round_number
        self._unsettled = Metrics.counter(NAMESPACE, f"dedup.cc_round_{round_number}_unsettled_nodes")

    def process(self, element):
        (a, b), unsettled = graph.large_star(*graph.concat(element[1], 2))
        self._unsettled.inc(unsettled)
        yield beam.pvalue.TaggedOutput(REPORTS, dedup_report(f"cc_round_{self._round}", unsettled_nodes=unsettled))
        if len(a):
            yield a, b


def _small_star(element):
    a, b = graph.small_star(*graph.concat(element[1], 2))
    if len(a):
        yield a, b


class SettleFn(beam.DoFn):
    def __init__(self) -> None:
        self._labelled = Metrics.counter(NAMESPACE, "dedup.labelled_nodes")  # checked against dedup.labels_joined

    def process(self, element):
        (nodes, labels), (a, b) = graph.settle(*graph.concat(element[1], 2))
        if len(a):
            yield beam.pvalue.TaggedOutput(UNSETTLED, (a, b))
        if len(nodes):
            self._labelled.inc(len(nodes))
            yield nodes, labels


def finish_on_one_worker(parts: list[tuple[np.ndarray, np.ndarray]], rounds: int) -> dict[int, int]:
    """Union-find over the edges that the distributed rounds left unsettled (normally none)."""
    a, b = graph.concat(parts, 2)
    if len(a):
        Metrics.counter(NAMESPACE, "dedup.cc_finished_on_one_worker_edges").inc(len(a))
        _log.warning(
            "connected components did not converge in %d rounds: %d edges were finished on one worker. "
            "The clusters are correct; raise --cc-rounds to keep this work distributed.", rounds, len(a))
    return graph.union_find_labels(a, b)


def _apply_finish(labels: tuple[np.ndarray, np.ndarray], finished: dict[int, int]):
    nodes, current = labels
    if finished:
        current = np.array([finished.get(x, x) for x in current.tolist()], dtype=np.uint64)
    return nodes, current


class ConnectedComponents(beam.PTransform):
    """edges -> (nodes, labels) arrays, label = smallest node of the component; reports.

    `rounds` unrolled large-star/small-star rounds (Beam has no loops), then a settle pass.
    Whatever is still not a star then (a counter and a warning say so) is finished by
    union-find on one worker, so the clusters are right even when the rounds were too few.
    """

    def __init__(self, rounds: int, partitions: int):
        super().__init__()
        self._rounds, self._partitions = rounds, partitions

    def expand(self, edges):
        parts = self._partitions
        reports = []
        for r in range(self._rounds):
            large = (edges
                     | f"LargeStarSpread{r}" >> beam.FlatMap(_both_directions, parts)
                     | f"LargeStarGroup{r}" >> beam.GroupByKey()
                     | f"LargeStar{r}" >> beam.ParDo(LargeStarFn(r)).with_outputs(REPORTS, main="edges"))
            reports.append(large[REPORTS])
            edges = (large.edges
                     | f"SmallStarSpread{r}" >> beam.FlatMap(_at_larger_end, parts)
                     | f"SmallStarGroup{r}" >> beam.GroupByKey()
                     | f"SmallStar{r}" >> beam.FlatMap(_small_star))
        settled = (edges
                   | "SettleSpread" >> beam.FlatMap(_both_directions, parts)
                   | "SettleGroup" >> beam.GroupByKey()
                   | "Settle" >> beam.ParDo(SettleFn()).with_outputs(UNSETTLED, main="labels"))
        rounds = self._rounds
        finished = (settled[UNSETTLED]
                    | "CollectUnsettled" >> beam.combiners.ToList()
                    | "FinishOnOneWorker" >> beam.Map(finish_on_one_worker, rounds))
        reports.append(finished | "FinishReport" >> beam.Map(
            lambda f: dedup_report("cc_finish", rounds=rounds, finished_on_one_worker_nodes=len(f))))
        labels = settled.labels | "ApplyFinish" >> beam.Map(_apply_finish, beam.pvalue.AsSingleton(finished))
        return labels, reports
