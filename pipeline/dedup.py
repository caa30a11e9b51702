"""Duplicate clustering: exact and near duplicates in one cluster-id space.

1. A batched GroupByKey on the input id makes ids unique (small key tuples, no text).
2. Band keys per document (LSH bands of its MinHash signature; a text-hash key for texts
   too short to shingle, or for every text when near dedup is off) are grouped in
   batched partitions; each bucket links its members to its smallest one (star edges).
3. Verification (on by default) drops candidate edges whose two documents' shingle sets
   (or, optionally, signatures) are less similar than the threshold.
4. Connected components label every linked document with its component's smallest key.
5. Each component (its members meet in a batched shuffle by label) picks its kept copy:
   earliest known date, then lowest synthetic probability (when known), then smallest id.
   The others are duplicates of it: exact when their normalised text equals the kept
   copy's, near otherwise.

Output: batches of (key, DupInfo as a plain tuple), one per document; the texts are
joined back once, in the writer. Rows cross shuffles as plain tuples: Beam encodes those
natively but pickles NamedTuples one by one.
"""
from __future__ import annotations

import datetime as dt
import zlib
from typing import Any, Iterable, Iterator, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline import graph
from pipeline.batching import BufferedFn, PartitionBuffers
from pipeline.lsh import (REPORTS, SETS_VIA_FLATTEN, BandKeysFn, BucketEdgesFn, ConnectedComponents, DedupConfig,
                          VerifyEdges, is_sketch_piece)
from pipeline.read import NAMESPACE
from schemas import REASON_EXACT_DUPLICATE, REASON_NEAR_DUPLICATE

_NO_DATE = 2**63 - 1  # undated documents rank after every dated one
_NO_PROBABILITY = 2.0  # documents without a synthetic probability rank after scored ones
SINGLETONS = "singletons"
CHUNK = 4096  # rows per outcome or shuffle batch
HELD_ROWS = 16 * 4096  # key rows held for batching by partition: ~30 MB at most


class NodeRow(NamedTuple):
    """A document as cluster resolution sees it."""
    key: int
    id: str                 # final, unique id
    id_collision: bool
    date_us: int
    text_hash: str
    synthetic_probability: float | None


class DupInfo(NamedTuple):
    """One record's dedup outcome."""
    id: str                 # final, unique id
    id_collision: bool      # the input id was taken by an earlier record and was suffixed
    cluster_id: str         # id of the cluster's representative (kept copy)
    cluster_size: int
    is_representative: bool
    reason: str | None      # exact_duplicate / near_duplicate for the others, None for the kept copy


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _date_us(date: dt.datetime | None) -> int:
    return _NO_DATE if date is None else (date - _EPOCH) // dt.timedelta(microseconds=1)


def key_row(doc: dict[str, Any]) -> tuple:
    """(id, key, source_file, source_position, date_us, text_hash, synthetic_probability)."""
    return (doc["id"], doc["key"], doc["source_file"], doc["source_position"],
            _date_us(doc["date"]), doc["text_hash"], doc.get("synthetic_probability"))


def id_partition(doc_id: str, parts: int) -> int:
    """Stable across processes, unlike hash() of a str."""
    return zlib.crc32(doc_id.encode("utf-8", "surrogatepass")) % parts


class PartitionByIdFn(BufferedFn):
    """documents -> (partition of the id, [key rows]): ids meet in batches, not one element each."""

    def __init__(self, num_partitions: int):
        super().__init__(CHUNK)
        self._num_partitions = num_partitions

    def start_bundle(self) -> None:
        super().start_bundle()
        self._parts = PartitionBuffers(self._max_items, HELD_ROWS, len,
                                       lambda pieces: [row for rows in pieces for row in rows])

    def flush(self, batch: list[dict[str, Any]]) -> Iterator[tuple[int, list[tuple]]]:
        parts: dict[int, list[tuple]] = {}
        for doc in batch:
            parts.setdefault(id_partition(doc["id"], self._num_partitions), []).append(key_row(doc))
        for p, rows in parts.items():
            yield from self._parts.add(p, rows)

    def drain(self) -> list[tuple[int, list[tuple]]]:
        return self._parts.drain()


def chunked(parts: dict[int, list[Any]], size: int = CHUNK) -> Iterator[tuple[int, list[Any]]]:
    for p, rows in parts.items():
        for start in range(0, len(rows), size):
            yield p, rows[start:start + size]


class ResolveIdsFn(beam.DoFn):
    """(id partition, [[key rows]]) -> (key partition, [node rows]).

    Per id, the first record by (source_file, source_position) keeps it; every other one
    gets `<id>#<its record key, 16 hex digits>`, unique per input record (a plain `#n`
    could meet an input id that already reads `<id>#1`)."""

    def __init__(self, num_partitions: int):
        self._num_partitions = num_partitions
        self._collisions = Metrics.counter(NAMESPACE, "dedup.id_collisions")

    def process(self, element: tuple[int, Iterable[list[tuple]]]) -> Iterator[tuple[int, list[tuple]]]:
        rows = sorted((r for batch in element[1] for r in batch), key=lambda r: (r[0], r[2], r[3]))
        out: dict[int, list[tuple]] = {}
        previous, collisions = None, 0
        for doc_id, key, _, _, date_us, hashed, probability in rows:
            collision = doc_id == previous
            previous = doc_id
            collisions += collision
            final = f"{doc_id}#{key:016x}" if collision else doc_id
            out.setdefault(key % self._num_partitions, []).append(
                (key, final, collision, date_us, hashed, probability))
        self._collisions.inc(collisions)
        yield from chunked(out)


def representative_order(row: NodeRow) -> tuple[int, float, str]:
    """Smaller is preferred as the kept copy."""
    probability = _NO_PROBABILITY if row.synthetic_probability is None else row.synthetic_probability
    return row.date_us, probability, row.id


def _order_of(row: tuple) -> tuple[int, float, str]:
    return representative_order(NodeRow._make(row))


def label_rows(element: tuple[int, dict[str, Iterable[Any]]], parts: int) -> Iterator[Any]:
    """Join one partition's node rows with their component labels: labelled rows go on
    to their label's partition, unlabelled ones (no near or exact copy) are final
    singletons, emitted as outcome batches."""
    _, groups = element
    nodes, labels = graph.concat(groups["labels"], 2)
    Metrics.counter(NAMESPACE, "dedup.labels_joined").inc(len(nodes))
    label_of = dict(zip(nodes.tolist(), labels.tolist()))
    singles: list[tuple[int, tuple]] = []
    members: dict[int, list[tuple[int, tuple]]] = {}
    for rows in groups["rows"]:
        for row in rows:
            label = label_of.get(row[0])
            if label is None:
                singles.append((row[0], (row[1], row[2], row[1], 1, True, None)))
                if len(singles) >= CHUNK:
                    yield beam.pvalue.TaggedOutput(SINGLETONS, singles)
                    singles = []
            else:
                members.setdefault(label % parts, []).append((label, row))
    if singles:
        yield beam.pvalue.TaggedOutput(SINGLETONS, singles)
    yield from chunked(members)


class ClusterOutcomesFn(beam.DoFn):
    """(label partition, [[(label, node row)]]) -> outcome batches of its components.

    Each component picks its kept copy by `representative_order`; the others are exact
    duplicates when their normalised text equals the kept copy's, near ones otherwise."""

    def __init__(self) -> None:
        self._by_reason = {REASON_EXACT_DUPLICATE: Metrics.counter(NAMESPACE, "dedup.exact_duplicates"),
                           REASON_NEAR_DUPLICATE: Metrics.counter(NAMESPACE, "dedup.near_duplicates")}

    def process(self, element: tuple[int, Iterable[list[tuple[int, tuple]]]]) -> Iterator[list[tuple[int, tuple]]]:
        components: dict[int, list[tuple]] = {}
        for batch in element[1]:
            for label, row in batch:
                components.setdefault(label, []).append(row)
        counts = {REASON_EXACT_DUPLICATE: 0, REASON_NEAR_DUPLICATE: 0}
        out: list[tuple[int, tuple]] = []
        for rows in components.values():
            kept = min(rows, key=_order_of)
            kept_key, kept_id, kept_hash, size = kept[0], kept[1], kept[4], len(rows)
            for key, final, collision, _, hashed, _ in rows:
                if key == kept_key:
                    out.append((key, (final, collision, kept_id, size, True, None)))
                    continue
                reason = REASON_EXACT_DUPLICATE if hashed == kept_hash else REASON_NEAR_DUPLICATE
                counts[reason] += 1
                out.append((key, (final, collision, kept_id, size, False, reason)))
            if len(out) >= CHUNK:
                yield out
                out = []
        if out:
            yield out
        for reason, n in counts.items():
            self._by_reason[reason].inc(n)


class Duplicates(beam.PTransform):
    """documents -> (batches of (key, DupInfo as a tuple), one per document; dedup reports).

    Every step after the band keys moves batches (lists of rows, or numpy arrays) keyed
    by partition, never one element per document: a Python runner pays tens of
    microseconds per shuffled element, more than the work done on it."""

    def __init__(self, config: DedupConfig = DedupConfig()):
        super().__init__()
        self._config = config

    def expand(self, documents):
        config, parts = self._config, self._config.partitions
        nodes = (documents
                 | "PartitionById" >> beam.ParDo(PartitionByIdFn(parts))
                 | "GroupById" >> beam.GroupByKey()
                 | "ResolveIds" >> beam.ParDo(ResolveIdsFn(parts)))
        verify, via_flatten = config.verifies, config.sets_route == SETS_VIA_FLATTEN
        to_buckets = documents | "BandKeys" >> beam.ParDo(BandKeysFn(config))
        if verify and via_flatten:
            to_buckets, sketches = to_buckets | "SplitSketches" >> beam.Partition(is_sketch_piece, 2)
        buckets = (to_buckets
                   | "GroupBuckets" >> beam.GroupByKey()
                   | "BucketEdges" >> beam.ParDo(BucketEdgesFn(parts if verify else None)).with_outputs(
                       REPORTS, main="edges"))
        reports = [buckets[REPORTS]]
        edges = buckets.edges
        if verify:  # BucketEdges made edge halves (beside the sketches, via buckets), keyed for the join
            halves = buckets.edges
            if via_flatten:
                halves = (halves, sketches) | "WithSketches" >> beam.Flatten()
            edges, verify_reports = halves | "Verify" >> VerifyEdges(config)
            reports.append(verify_reports)
        labels, cc_reports = edges | "Components" >> ConnectedComponents(config.cc_rounds if config.near else 0, parts)
        reports.extend(cc_reports)
        joined = ({"rows": nodes,
                   "labels": labels | "PartitionLabels" >> beam.FlatMap(
                       lambda nl: graph.split_by_partition(nl[0], nl, parts))}
                  | "JoinLabels" >> beam.CoGroupByKey()
                  | "LabelRows" >> beam.FlatMap(label_rows, parts).with_outputs(SINGLETONS, main="members"))
        clustered = (joined.members
                     | "GroupComponents" >> beam.GroupByKey()
                     | "ClusterOutcomes" >> beam.ParDo(ClusterOutcomesFn()))
        outcomes = (joined[SINGLETONS], clustered) | "AllOutcomes" >> beam.Flatten()
        return outcomes, reports | "DedupReports" >> beam.Flatten()
