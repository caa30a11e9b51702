"""ReadDocuments: input files in; documents, error rows and one report per file out."""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.documents import SourceFile, build_document, record_key
from pipeline.fields import WARC_MAPPING, FieldMapping
from pipeline.formats import RawRecord, RecordError, SkippedRecords, read_stream

NAMESPACE = "firsthand"
ERRORS = "errors"
REPORTS = "reports"
_PROGRESS_SECONDS = 15.0
_log = logging.getLogger("firsthand.read")


def error_row(source: SourceFile, error: RecordError, stage: str = "read") -> dict[str, Any]:
    """An errors/ row (schema ERROR_COLUMNS) plus `key` for sharding."""
    position = error.position
    return {
        "key": record_key(source.path, -1 if position is None else position),
        "source_file": source.path,
        "source_format": source.format,
        "source_position": position,
        "byte_offset": error.byte_offset,
        "stage": stage,
        "kind": error.kind,
        "message": error.message,
        "raw_excerpt": error.raw_excerpt,
        "raw_size": error.raw_size,
    }


class ReadFileFn(beam.DoFn):
    """Reads one whole file: compressed files cannot be split, so one file is one unit of work."""

    def __init__(self, mapping: FieldMapping, max_record_bytes: int, html_main_content: bool, total_files: int):
        self._mapping = mapping
        self._max_record_bytes = max_record_bytes
        self._html_main_content = html_main_content
        self._total_files = total_files
        self._files = Metrics.counter(NAMESPACE, "read.files")
        self._documents = Metrics.counter(NAMESPACE, "read.documents")
        self._errors = Metrics.counter(NAMESPACE, "read.errors")

    def process(self, source: SourceFile) -> Iterator[Any]:
        mapping = WARC_MAPPING if source.format in ("warc", "wet") else self._mapping
        skipped = SkippedRecords()
        errors: Counter[str] = Counter()
        documents = 0
        started = last_log = time.monotonic()
        _log.info("reading %s (%s, %.1f MB) of %d input files", source.path, source.format,
                  source.size_bytes / 1e6, self._total_files)

        def opener():
            return FileSystems.open(source.path, compression_type=CompressionTypes.UNCOMPRESSED)

        for item in read_stream(opener, source.format, skipped, self._max_record_bytes,
                                self._html_main_content, name=source.path):
            built = build_document(item, mapping, source) if isinstance(item, RawRecord) else item
            if isinstance(built, RecordError):
                errors[built.kind] += 1
                yield beam.pvalue.TaggedOutput(ERRORS, error_row(source, built))
            else:
                documents += 1
                yield built
            now = time.monotonic()
            if now - last_log > _PROGRESS_SECONDS:
                last_log = now
                _log.info("  %s: %d documents, %d errors so far (%.0f docs/s)", source.path, documents,
                          sum(errors.values()), documents / (now - started))

        if source.size_bytes == 0 and not documents and not errors:
            skipped.add("empty_file")  # valid, but worth a line in the manifest: often a failed download
            _log.warning("%s is empty (0 bytes)", source.path)
        elapsed = time.monotonic() - started
        self._files.inc()
        self._documents.inc(documents)
        self._errors.inc(sum(errors.values()))
        for kind, n in errors.items():
            Metrics.counter(NAMESPACE, f"read.error.{kind}").inc(n)
        _log.info("read %s: %d documents, %d errors, %s skipped in %.1fs", source.path, documents,
                  sum(errors.values()), dict(skipped.counts) or "none", elapsed)
        yield beam.pvalue.TaggedOutput(REPORTS, {
            "report": "input", "path": source.path, "format": source.format, "size_bytes": source.size_bytes,
            "documents": documents, "errors": sum(errors.values()), "errors_by_kind": dict(errors),
            "skipped": dict(skipped.counts),
        })


class ReadDocuments(beam.PTransform):
    """Reads every input file in parallel, one file per element.

    Outputs: the main PCollection of document dicts, `errors` (error rows) and
    `reports` (one dict per file with its counts).
    """

    def __init__(self, sources: list[SourceFile], mapping: FieldMapping, max_record_bytes: int,
                 html_main_content: bool = True):
        super().__init__()
        self._sources = sources
        self._fn = ReadFileFn(mapping, max_record_bytes, html_main_content, len(sources))

    def expand(self, pbegin):
        return (pbegin
                | "Files" >> beam.Create(self._sources)
                | "Spread" >> beam.Reshuffle()
                | "Parse" >> beam.ParDo(self._fn).with_outputs(ERRORS, REPORTS, main="documents"))
