"""Deterministic Parquet shards: same input and configuration, same rows in the same
files with the same bytes, whatever the runner or worker count.

A record goes to shard `key % num_shards` (key hashes its source file and position)
and rows are sorted inside a shard. Each file is written under `_temporary/` and
renamed into place, so a half-written shard is never visible under its final name.
"""
from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.dedup import DupInfo
from pipeline.decisions import decide
from pipeline.detect import DetectConfig
from pipeline.read import NAMESPACE
from schemas import DECISION_KEEP, DOCUMENTS, ERROR_COLUMN_NAMES, ERRORS, KEPT, REJECTED, document_schema, error_schema

TEMP_DIR = "_temporary"
ROW_GROUP_ROWS = 10_000
_log = logging.getLogger("firsthand.write")


def shard_name(table: str, shard: int) -> str:
    return f"{table}/part-{shard:05d}.parquet"


def ensure_folder(folder: str) -> None:
    """Create a folder where the filesystem has them (local); a no-op on object stores."""
    if not FileSystems.exists(folder):
        try:
            FileSystems.mkdirs(folder)
        except Exception:  # noqa: BLE001 - another worker may have made it meanwhile
            if not FileSystems.exists(folder):
                raise


def rename_into_place(temp: str, final: str) -> None:
    ensure_folder(FileSystems.split(final)[0])
    FileSystems.rename([temp], [final])


def write_parquet(rows: list[dict[str, Any]], schema: pa.Schema, output: str, name: str) -> int:
    """Write rows as one zstd Parquet file at output/name via a temporary file; return its size."""
    table = pa.Table.from_pylist(rows, schema=schema)
    temp = FileSystems.join(output, TEMP_DIR, f"{name.replace('/', '-')}.{uuid.uuid4().hex}")
    final = FileSystems.join(output, name)
    with FileSystems.create(temp) as f:
        pq.write_table(table, f, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    rename_into_place(temp, final)
    return FileSystems.match([final])[0].metadata_list[0].size_in_bytes


LARGEST_CLUSTERS = 5


def largest_clusters(rows: list[dict[str, Any]], k: int = LARGEST_CLUSTERS) -> list[dict[str, Any]]:
    """The k largest duplicate clusters among these rows, named by their kept copy."""
    kept = sorted((r for r in rows if r["dup_is_representative"] and r["dup_cluster_size"] > 1),
                  key=lambda r: (-r["dup_cluster_size"], r["dup_cluster_id"]))[:k]
    return [{"cluster_id": r["dup_cluster_id"], "size": r["dup_cluster_size"],
             "excerpt": " ".join(r["text"].split())[:80]} for r in kept]


def _table_report(table: str, name: str, rows: list[dict[str, Any]], size: int, threshold: float) -> dict[str, Any]:
    reasons: Counter[str] = Counter(r for row in rows for r in row["reasons"])
    flags: Counter[str] = Counter(f for row in rows for f in row["flags"])
    return {
        "report": "output", "table": table, "path": name, "rows": len(rows), "bytes": size,
        "decisions": dict(Counter(row["decision"] for row in rows)),
        "reasons": dict(reasons), "flags": dict(flags),
        "duplicate_clusters": sum(1 for row in rows if row["dup_is_representative"] and row["dup_cluster_size"] > 1),
        "largest_clusters": largest_clusters(rows),
        "synthetic_scored": sum(1 for row in rows if row["detector_version"] is not None),
        "synthetic_with_probability": sum(1 for row in rows if row["synthetic_probability"] is not None),
        "synthetic_probability_sum": sum(row["synthetic_probability"] for row in rows
                                         if row["synthetic_probability"] is not None),
        "synthetic_at_or_above_threshold": sum(1 for row in rows if row["synthetic_probability"] is not None
                                               and row["synthetic_probability"] >= threshold),
    }


class WriteDocumentShardFn(beam.DoFn):
    """Joins one shard's documents with their dedup outcomes, decides, sorts and writes."""

    def __init__(self, output: str, mode: str, detect: DetectConfig):
        self._output = output
        self._mode = mode
        self._detect = detect
        self._rows = {t: Metrics.counter(NAMESPACE, f"write.{t}") for t in (KEPT, REJECTED, DOCUMENTS)}

    def process(self, element: tuple[int, dict[str, Iterable[Any]]]) -> Iterator[dict[str, Any]]:
        shard, groups = element
        outcomes = {key: info for batch in groups["dedup"] for key, info in batch}
        rows = []
        for doc in groups["documents"]:
            if doc["key"] not in outcomes:
                raise RuntimeError(f"internal error: no dedup outcome for {doc['source_file']} "
                                   f"record {doc['source_position']}; please report this")
            rows.append(decide(doc, DupInfo(*outcomes[doc["key"]]), self._detect))
        rows.sort(key=lambda r: r["id"])
        if self._mode == "tag":
            tables = {DOCUMENTS: rows}
        else:
            tables = {KEPT: [r for r in rows if r["decision"] == DECISION_KEEP],
                      REJECTED: [r for r in rows if r["decision"] != DECISION_KEEP]}
        for table, table_rows in tables.items():
            if not table_rows:
                continue
            name = shard_name(table, shard)
            size = write_parquet(table_rows, document_schema(), self._output, name)
            self._rows[table].inc(len(table_rows))
            for reason, n in Counter(r for row in table_rows for r in row["reasons"]).items():
                Metrics.counter(NAMESPACE, f"reason.{reason}").inc(n)
            _log.info("wrote %s (%d rows)", name, len(table_rows))
            yield _table_report(table, name, table_rows, size, self._detect.threshold)


class WriteErrorShardFn(beam.DoFn):
    def __init__(self, output: str):
        self._output = output
        self._rows = Metrics.counter(NAMESPACE, f"write.{ERRORS}")

    def process(self, element: tuple[int, Iterable[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        shard, errors = element
        rows = sorted(({k: e[k] for k in ERROR_COLUMN_NAMES} for e in errors),
                      key=lambda r: (r["source_file"], -1 if r["source_position"] is None else r["source_position"],
                                     r["kind"], r["message"]))
        name = shard_name(ERRORS, shard)
        size = write_parquet(rows, error_schema(), self._output, name)
        self._rows.inc(len(rows))
        _log.info("wrote %s (%d rows)", name, len(rows))
        yield {"report": "output", "table": ERRORS, "path": name, "rows": len(rows), "bytes": size,
               "kinds": dict(Counter(r["kind"] for r in rows))}


def _by_shard(outcomes: list[tuple[int, tuple]], num_shards: int) -> Iterator[tuple[int, list[tuple[int, tuple]]]]:
    """A batch of (key, outcome) -> one (shard, batch) per shard it touches."""
    shards: dict[int, list[tuple[int, tuple]]] = {}
    for outcome in outcomes:
        shards.setdefault(outcome[0] % num_shards, []).append(outcome)
    return iter(shards.items())


class WriteDocuments(beam.PTransform):
    """(documents, batches of dedup outcomes) -> kept/ and rejected/ shards (tag mode: documents/); yields reports."""

    def __init__(self, output: str, num_shards: int, mode: str, detect: DetectConfig):
        super().__init__()
        self._output, self._num_shards, self._mode, self._detect = output, num_shards, mode, detect

    def expand(self, inputs):
        documents, dedup = inputs
        n = self._num_shards
        return ({"documents": documents | "ShardDocuments" >> beam.Map(lambda d: (d["key"] % n, d)),
                 "dedup": dedup | "ShardOutcomes" >> beam.FlatMap(_by_shard, n)}
                | "JoinByShard" >> beam.CoGroupByKey()
                | "WriteShards" >> beam.ParDo(WriteDocumentShardFn(self._output, self._mode, self._detect)))


class WriteErrors(beam.PTransform):
    """error rows -> errors/ shards; yields reports."""

    def __init__(self, output: str, num_shards: int):
        super().__init__()
        self._output, self._num_shards = output, num_shards

    def expand(self, errors):
        n = self._num_shards
        return (errors
                | "ShardErrors" >> beam.Map(lambda e: (e["key"] % n, e))
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShards" >> beam.ParDo(WriteErrorShardFn(self._output)))
