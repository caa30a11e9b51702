"""Column names, types and the schema version of every table firsthand writes.

This module is the one source of truth: readers, writers, the README's column
tables (`firsthand schema`) and downstream readers all take their names from here.
Bump SCHEMA_VERSION's minor part when columns are added, its major part when a
column is renamed, removed or changes type.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1.3.0"
SCHEMA_VERSION_KEY = b"firsthand.schema_version"
TABLE_KEY = b"firsthand.table"

# A run folder: one sub-folder of Parquet shards per table, and the manifest written last
# (or, when the accounting fails, the failed manifest instead). The pipeline writes the
# unchecked manifest; the driver renames it to MANIFEST once Beam's metrics agree with it, so a
# run killed in between never looks complete. Writers and readers share these.
KEPT, REJECTED, DOCUMENTS, ERRORS = "kept", "rejected", "documents", "errors"
DOCUMENT_TABLES = (KEPT, REJECTED, DOCUMENTS)
MANIFEST = "manifest.json"
FAILED_MANIFEST = "manifest.failed.json"
UNCHECKED_MANIFEST = "manifest.unchecked.json"
REPORT = "report.html"  # written after the manifest from the run's outputs; not data, so not listed


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool
    doc: str

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable)


# Decision values and reason codes written to `decision` / `reasons`.
DECISION_KEEP = "keep"
DECISION_REJECT = "reject"
REASON_EXACT_DUPLICATE = "exact_duplicate"
REASON_NEAR_DUPLICATE = "near_duplicate"
REASON_SYNTHETIC = "synthetic"              # synthetic_probability at or above the run's threshold
REASON_CHATBOT_RESIDUE = "chatbot_residue"  # a phrase only a chat assistant writes (hard evidence)
REJECT_REASONS: tuple[str, ...] = (REASON_EXACT_DUPLICATE, REASON_NEAR_DUPLICATE, REASON_SYNTHETIC,
                                   REASON_CHATBOT_RESIDUE)

# Flags written to `flags`: facts about a document worth knowing, not reasons to drop it.
FLAG_ID_COLLISION = "id_collision"
FLAG_DATE_UNPARSEABLE = "date_unparseable"
FLAG_CONTROL_CHARACTERS = "control_characters"
FLAG_CHATBOT_RESIDUE = "chatbot_residue"
FLAG_DETECTOR_UNSUPPORTED = "detector_unsupported_language"
FLAG_DETECTOR_TOO_SHORT = "detector_text_too_short"
FLAG_DETECTOR_FAILED = "detector_failed"


def _list_of(item: pa.DataType) -> pa.DataType:
    # Parquet names list items "element"; declaring the same makes the schema round-trip exactly.
    return pa.list_(pa.field("element", item))


SIGNAL_TYPE = pa.struct([pa.field("name", pa.string(), nullable=False),
                         pa.field("score", pa.float32(), nullable=False)])

DOCUMENT_COLUMNS: tuple[Column, ...] = (
    # -- the document as read --
    Column("id", pa.string(), False,
           "Stable document id, unique within a run: the input's own id, else "
           "`<path relative to the input glob's base>:<record index>`. When two input "
           "records carry the same id, the first by (source_file, source_position) keeps "
           "it and each other one gets `<id>#<16 hex digits of a hash of its source file and "
           "record index>` and the `id_collision` flag."),
    Column("text", pa.string(), False,
           "The document text exactly as read (for WARC responses: the text extracted "
           "from the HTML). Normalisation for scoring never alters it."),
    Column("url", pa.string(), True, "Source URL when the input carries one."),
    Column("date", pa.timestamp("us", tz="UTC"), True,
           "Earliest trustworthy date known for the text (input date field, or the "
           "WARC-Date of a crawl record), in UTC. Null when unknown or unparseable."),
    Column("source_file", pa.string(), False, "Full path of the input file the record came from."),
    Column("source_position", pa.int64(), False,
           "0-based index of the record in its file: line for JSON Lines, row for "
           "Parquet, record for WARC/WET (counting every WARC record)."),
    Column("source_format", pa.string(), False, "Input format: jsonl, parquet, warc or wet."),
    Column("source_fields", pa.string(), True,
           "JSON object of every input field except the text field, carried through "
           "unchanged (keys sorted). Null when there are none."),
    # -- provenance: filled by the pipeline's stages --
    Column("text_hash", pa.string(), False,
           "128-bit BLAKE2b of the normalised text (NFKC, zero-width and other format "
           "characters removed, whitespace runs folded), hex. Equal hashes are exact "
           "duplicates."),
    Column("dup_cluster_id", pa.string(), False,
           "Id of the representative (kept copy) of this document's duplicate cluster; "
           "equal to `id` for representatives and for documents with no duplicate. A "
           "cluster holds exact copies (same `text_hash`) and near copies (MinHash LSH "
           "candidates, linked transitively: A~B and B~C put A, B and C in one cluster)."),
    Column("dup_cluster_size", pa.int64(), False, "Number of documents in the duplicate cluster (1 = unique)."),
    Column("dup_is_representative", pa.bool_(), False,
           "True for the one document of its cluster that is kept: earliest known date, "
           "then lowest `synthetic_probability` (when scored), then smallest id."),
    Column("synthetic_probability", pa.float32(), True,
           "Calibrated probability that the text is machine-written, for a 50% prior, with the "
           "date prior applied when `date` is before the cutoff. Null when the detectors are "
           "off, or for text they cannot judge (`detector_unsupported_language`, "
           "`detector_text_too_short`, `detector_failed`)."),
    Column("synthetic_signals", _list_of(SIGNAL_TYPE), True,
           "Every detector feature behind `synthetic_probability`, as (`detector.feature`, "
           "score): e.g. `ngram.ngram_machine_logit` (fastText log-odds), "
           "`lexicon.llm_vocab_rate` (LLM style words per 1,000 words), `residue.residue_match`. "
           "Null when the detectors are off."),
    Column("synthetic_evidence", pa.string(), True,
           "The chatbot-residue phrase found in the text (canonical form), if any."),
    Column("detector_version", pa.string(), True,
           "The detector stack that scored the row: stack sha256 prefix and each detector's "
           "version. Null when the detectors are off."),
    Column("language", pa.string(), True,
           "Language of the text's first 500 characters by fastText's 176-language identification "
           "(lid.176.ftz): its code, ISO 639-1 such as `en`, `de`, `zh` where there is one, else "
           "ISO 639-2/3 (`ceb`, `yue`); `und` for a text with nothing to identify. Null when the "
           "detectors are off or failed on the text."),
    Column("language_score", pa.float32(), True,
           "The language identification's probability for `language`, in [0, 1] (0 for `und`). "
           "A text gets `synthetic_probability` only when `language` is one the detector stack was "
           "trained on (English) with `language_score` >= 0.5. Null when `language` is."),
    Column("flags", _list_of(pa.string()), False,
           "Facts worth knowing that are not reasons to drop: `id_collision`, "
           "`date_unparseable`, `control_characters`, `chatbot_residue`, "
           "`detector_unsupported_language` (`language` "
           "is not one the detectors were trained on, or is identified with `language_score` "
           "under 0.5; no probability), `detector_text_too_short` (under 300 characters after "
           "folding: too short to judge; no probability), `detector_failed` (a detector raised "
           "on this text; no probability, the run went on)."),
    Column("decision", pa.string(), False,
           "`keep` or `reject`. In tag mode every document is written and this says what "
           "filter mode would have done."),
    Column("reasons", _list_of(pa.string()), False,
           "Why the document is rejected (empty when kept): `exact_duplicate` (same "
           "normalised text as the kept copy `dup_cluster_id`), `near_duplicate` (in its "
           "cluster, with different text), `synthetic` (`synthetic_probability` at or above "
           "--synthetic-threshold) or `chatbot_residue` (see `synthetic_evidence`)."),
    Column("sample_weight", pa.float32(), False,
           "Suggested training weight in [0, 1]: 0.0 for rejected documents; for kept ones "
           "1.0, or with --synthetic-policy weight, 1 - `synthetic_probability` (0.0 with "
           "chatbot residue, 1.0 when unscored)."),
)

ERROR_COLUMNS: tuple[Column, ...] = (
    Column("source_file", pa.string(), False, "Input file of the bad record, or the unreadable file."),
    Column("source_format", pa.string(), True, "Input format, when it could be told."),
    Column("source_position", pa.int64(), True,
           "0-based record index in the file (as in the documents table); null for "
           "errors that concern the whole file or the rest of it."),
    Column("byte_offset", pa.int64(), True,
           "Offset of the record in the decompressed stream, when known."),
    Column("stage", pa.string(), False, "Pipeline stage that found the error, e.g. `read`."),
    Column("kind", pa.string(), False,
           "Machine-readable error kind, e.g. `invalid_json`, `invalid_utf8`, "
           "`missing_text`, `truncated_file` (the README lists all)."),
    Column("message", pa.string(), False, "Human-readable explanation and what to do about it."),
    Column("raw_excerpt", pa.binary(), True, "The first bytes of the bad record (bounded), as read."),
    Column("raw_size", pa.int64(), True, "Size of the bad record in bytes, when known."),
)


def _schema(columns: tuple[Column, ...], table: str) -> pa.Schema:
    return pa.schema([c.field() for c in columns],
                     metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: table.encode()})


def document_schema() -> pa.Schema:
    """Arrow schema of `kept/`, `rejected/` and (tag mode) `documents/` shards."""
    return _schema(DOCUMENT_COLUMNS, "documents")


def error_schema() -> pa.Schema:
    """Arrow schema of `errors/` shards."""
    return _schema(ERROR_COLUMNS, "errors")


DOCUMENT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in DOCUMENT_COLUMNS)
ERROR_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in ERROR_COLUMNS)


def columns_markdown(columns: tuple[Column, ...]) -> str:
    """A Markdown table of the columns, for the README and `firsthand schema`."""
    lines = ["| column | type | nullable | meaning |", "|---|---|---|---|"]
    for c in columns:
        lines.append(f"| `{c.name}` | `{c.type}` | {'yes' if c.nullable else 'no'} | {c.doc} |")
    return "\n".join(lines)
