"""Exact-duplicate clustering over small key tuples; the texts never enter these shuffles.

Two GroupByKeys: by input id (to make ids unique), then by normalised-text hash (to
form clusters and pick each cluster's kept copy). Each emits one DupInfo per record
key; the texts are joined back once, in the shard writer.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Iterator, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.read import NAMESPACE

_NO_DATE = 2**63 - 1  # undated documents rank after every dated one


class KeyRow(NamedTuple):
    """What dedup needs of a document: ~100 bytes instead of the text."""
    key: int
    source_file: str
    source_position: int
    date_us: int
    text_hash: str


class DupInfo(NamedTuple):
    """One record's dedup outcome."""
    id: str                 # final, unique id
    id_collision: bool      # the input id was taken by an earlier record and was suffixed
    cluster_id: str         # id of the cluster's representative
    cluster_size: int
    is_representative: bool


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _date_us(date: dt.datetime | None) -> int:
    return _NO_DATE if date is None else (date - _EPOCH) // dt.timedelta(microseconds=1)


def key_row(doc: dict[str, Any]) -> tuple[str, KeyRow]:
    return doc["id"], KeyRow(doc["key"], doc["source_file"], doc["source_position"],
                             _date_us(doc["date"]), doc["text_hash"])


def resolve_ids(doc_id: str, rows: Iterable[KeyRow]) -> Iterator[tuple[str, tuple[str, bool, KeyRow]]]:
    """The first record by (source_file, source_position) keeps the id; every other one
    gets `<id>#<its record key, 16 hex digits>`, unique per input record (a plain `#n`
    could meet an input id that already reads `<id>#1`). Emits (text_hash, (final id, collided, row))."""
    ordered = sorted(rows, key=lambda r: (r.source_file, r.source_position))
    for n, row in enumerate(ordered):
        final = doc_id if n == 0 else f"{doc_id}#{row.key:016x}"
        yield row.text_hash, (final, n > 0, row)


def cluster_exact(text_hash: str, members: Iterable[tuple[str, bool, KeyRow]]) -> Iterator[tuple[int, DupInfo]]:
    """Pick the representative: earliest known date, then smallest id. Emits (key, DupInfo)."""
    ordered = sorted(members, key=lambda m: (m[2].date_us, m[0]))
    representative = ordered[0][0]
    size = len(ordered)
    for final_id, collided, row in ordered:
        yield row.key, DupInfo(final_id, collided, representative, size, final_id == representative)


class ExactDuplicates(beam.PTransform):
    """documents -> (key, DupInfo) for every document."""

    def expand(self, documents):
        collisions = Metrics.counter(NAMESPACE, "dedup.id_collisions")
        duplicates = Metrics.counter(NAMESPACE, "dedup.exact_duplicates")

        def count(item: tuple[int, DupInfo]) -> tuple[int, DupInfo]:
            info = item[1]
            if info.id_collision:
                collisions.inc()
            if not info.is_representative:
                duplicates.inc()
            return item

        return (documents
                | "KeyById" >> beam.Map(key_row)
                | "GroupById" >> beam.GroupByKey()
                | "ResolveIds" >> beam.FlatMapTuple(resolve_ids)
                | "GroupByTextHash" >> beam.GroupByKey()
                | "PickRepresentative" >> beam.FlatMapTuple(cluster_exact)
                | "Count" >> beam.Map(count))
