"""Duplicate clustering: exact and near duplicates in one cluster-id space.

1. A GroupByKey on the input id makes ids unique (small key tuples, no text).
2. Band keys per document (LSH bands of its MinHash signature; a text-hash key for texts
   too short to shingle, or for every text when near dedup is off) are grouped in
   batched partitions; each bucket links its members to its smallest one (star edges).
3. Verification (on by default) drops candidate edges whose two documents' shingle sets
   (or, optionally, signatures) are less similar than the threshold.
4. Connected components label every linked document with its component's smallest key.
5. Each component picks its kept copy: earliest known date, then lowest synthetic
   probability (when known), then smallest id. The others are duplicates of it: exact
   when their normalised text equals the kept copy's, near otherwise.

Output: one (key, DupInfo as a plain tuple) per document; the texts are joined back once,
in the writer. Rows cross shuffles as plain tuples: Beam encodes those natively but
pickles NamedTuples one by one.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Iterator, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline import graph
from pipeline.batching import PartitionRowsFn
from pipeline.lsh import REPORTS, SKETCHES, BandKeysFn, BucketEdgesFn, ConnectedComponents, DedupConfig, VerifyEdges
from pipeline.read import NAMESPACE
from schemas import REASON_EXACT_DUPLICATE, REASON_NEAR_DUPLICATE

_NO_DATE = 2**63 - 1  # undated documents rank after every dated one
_NO_PROBABILITY = 2.0  # documents without a synthetic probability rank after scored ones
SINGLETONS = "singletons"


class KeyRow(NamedTuple):
    """What id resolution needs of a document: ~100 bytes instead of the text."""
    key: int
    source_file: str
    source_position: int
    date_us: int
    text_hash: str
    synthetic_probability: float | None


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


def key_row(doc: dict[str, Any]) -> tuple[str, tuple]:
    return doc["id"], (doc["key"], doc["source_file"], doc["source_position"],
                       _date_us(doc["date"]), doc["text_hash"], doc.get("synthetic_probability"))


def resolve_ids(doc_id: str, rows: Iterable[tuple]) -> Iterator[tuple]:
    """The first record by (source_file, source_position) keeps the id; every other one
    gets `<id>#<its record key, 16 hex digits>`, unique per input record (a plain `#n`
    could meet an input id that already reads `<id>#1`)."""
    ordered = sorted((KeyRow(*r) for r in rows), key=lambda r: (r.source_file, r.source_position))
    for n, row in enumerate(ordered):
        final = doc_id if n == 0 else f"{doc_id}#{row.key:016x}"
        yield row.key, final, n > 0, row.date_us, row.text_hash, row.synthetic_probability


def representative_order(row: NodeRow) -> tuple[int, float, str]:
    """Smaller is preferred as the kept copy."""
    probability = _NO_PROBABILITY if row.synthetic_probability is None else row.synthetic_probability
    return row.date_us, probability, row.id


def singleton(row: NodeRow) -> DupInfo:
    return DupInfo(row.id, row.id_collision, row.id, 1, True, None)


class PickRepresentativeFn(beam.CombineFn):
    """Per component: the preferred member and the member count. Combinable, so a component
    of a million copies is reduced on many workers before one value per component moves."""

    def create_accumulator(self) -> tuple[NodeRow | None, int]:
        return None, 0

    def add_input(self, acc, row: tuple):
        return self.merge_accumulators([acc, (row, 1)])

    def merge_accumulators(self, accumulators):
        best, total = None, 0
        for row, n in accumulators:
            total += n
            if row is not None and (best is None or representative_order(NodeRow(*row)) < representative_order(NodeRow(*best))):
                best = row
        return best, total

    def extract_output(self, acc):
        return acc


def outcomes_of_component(element: tuple[int, dict[str, Iterable[Any]]]) -> Iterator[tuple[int, DupInfo]]:
    _, groups = element
    (representative, size), = groups["representative"]
    representative = NodeRow(*representative)
    for row in map(NodeRow._make, groups["members"]):
        is_rep = row.key == representative.key
        reason = None if is_rep else (
            REASON_EXACT_DUPLICATE if row.text_hash == representative.text_hash else REASON_NEAR_DUPLICATE)
        yield row.key, (row.id, row.id_collision, representative.id, size, is_rep, reason)


def label_rows(element: tuple[int, dict[str, Iterable[Any]]]) -> Iterator[Any]:
    """Join one partition's rows with its component labels: labelled rows go on by label,
    unlabelled ones (no near or exact copy) are final singletons."""
    _, groups = element
    nodes, labels = graph.concat(groups["labels"], 2)
    label_of = dict(zip(nodes.tolist(), labels.tolist()))
    for rows in groups["rows"]:
        for row in rows:
            label = label_of.get(row[0])
            if label is None:
                yield beam.pvalue.TaggedOutput(SINGLETONS, (row[0], tuple(singleton(NodeRow(*row)))))
            else:
                yield label, row


class Duplicates(beam.PTransform):
    """documents -> ((key, DupInfo) for every document, dedup reports)."""

    def __init__(self, config: DedupConfig = DedupConfig()):
        super().__init__()
        self._config = config

    def expand(self, documents):
        config, parts = self._config, self._config.partitions
        nodes = (documents
                 | "KeyById" >> beam.Map(key_row)
                 | "GroupById" >> beam.GroupByKey()
                 | "ResolveIds" >> beam.FlatMapTuple(resolve_ids))
        bands = documents | "BandKeys" >> beam.ParDo(BandKeysFn(config)).with_outputs(SKETCHES, main="bands")
        buckets = (bands.bands
                   | "GroupBuckets" >> beam.GroupByKey()
                   | "BucketEdges" >> beam.ParDo(BucketEdgesFn()).with_outputs(REPORTS, main="edges"))
        reports = [buckets[REPORTS]]
        edges = buckets.edges
        if config.near and config.verify is not None:
            verified = (edges, bands[SKETCHES]) | "Verify" >> VerifyEdges(config)
            edges = verified.edges
            reports.append(verified[REPORTS])
        labels, cc_reports = edges | "Components" >> ConnectedComponents(config.cc_rounds if config.near else 0, parts)
        reports.extend(cc_reports)
        joined = ({"rows": nodes | "PartitionNodes" >> beam.ParDo(PartitionRowsFn(parts)),
                   "labels": labels | "PartitionLabels" >> beam.FlatMap(
                       lambda nl: graph.split_by_partition(nl[0], nl, parts))}
                  | "JoinLabels" >> beam.CoGroupByKey()
                  | "LabelRows" >> beam.FlatMap(label_rows).with_outputs(SINGLETONS, main="members"))
        representatives = joined.members | "PickRepresentative" >> beam.CombinePerKey(PickRepresentativeFn())
        clustered = ({"members": joined.members, "representative": representatives}
                     | "JoinRepresentative" >> beam.CoGroupByKey()
                     | "Outcomes" >> beam.FlatMap(outcomes_of_component))
        outcomes = ((joined[SINGLETONS], clustered)
                    | "AllOutcomes" >> beam.Flatten()
                    | "Count" >> beam.ParDo(CountOutcomesFn()))
        return outcomes, reports | "DedupReports" >> beam.Flatten()


class CountOutcomesFn(beam.DoFn):
    def setup(self) -> None:
        self._collisions = Metrics.counter(NAMESPACE, "dedup.id_collisions")
        self._by_reason = {REASON_EXACT_DUPLICATE: Metrics.counter(NAMESPACE, "dedup.exact_duplicates"),
                           REASON_NEAR_DUPLICATE: Metrics.counter(NAMESPACE, "dedup.near_duplicates")}

    def process(self, item: tuple[int, tuple]) -> Iterator[tuple[int, tuple]]:
        info = DupInfo(*item[1])
        if info.id_collision:
            self._collisions.inc()
        if info.reason is not None:
            self._by_reason[info.reason].inc()
        yield item
