"""Input formats: told from a file's name, read as a stream of records and errors.

Nothing here imports Beam but the FileSystems opener, so every reader is testable
on an in-memory stream.
"""
from __future__ import annotations

from typing import BinaryIO, Callable, Iterator

from pipeline.formats.compression import open_decompressed, sniff_compression
from pipeline.formats.jsonl import read_jsonl
from pipeline.formats.parquet import read_parquet
from pipeline.formats.records import (
    TRUNCATED_FILE, UNKNOWN_FORMAT, UNREADABLE_FILE, RawRecord, RecordError, SkippedRecords,
)
from pipeline.formats.warc import read_warc

FORMATS = ("jsonl", "parquet", "warc", "wet")
_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz")


def detect_format(path: str) -> str | None:
    """jsonl, parquet, warc, wet (or wat, refused later) from the file name; None when it does not say."""
    name = path.rsplit("/", 1)[-1].lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(".wat"):
        return "wat"
    if name.endswith(".wet"):
        return "wet"
    if name.endswith(".warc"):
        return "warc"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return None


def read_stream(opener: Callable[[], BinaryIO], fmt: str | None, skipped: SkippedRecords,
                max_record_bytes: int, html_main_content: bool = True,
                name: str = "file") -> Iterator[RawRecord | RecordError]:
    """Every record of one file, then (when it breaks) one error for the rest of it.

    Records read before damage are kept; the damage becomes a single error with
    source_position None, since how many records it hid cannot be known.
    """
    if fmt is None:
        yield RecordError(UNKNOWN_FORMAT,
                          f"cannot tell the format of {name} from its name: expected .jsonl/.json, "
                          ".parquet, .warc or .warc.wet, optionally compressed; or pass --format")
        return
    if fmt == "wat":
        yield RecordError(UNKNOWN_FORMAT, f"{name} is a WAT file (crawl metadata, no text); "
                                          "leave WAT files out of --input")
        return
    try:
        with opener() as raw:
            if fmt == "parquet":
                wrapper = sniff_compression(raw.read(8))
                raw.seek(0)
                if wrapper:
                    yield RecordError(UNREADABLE_FILE, f"{name} is a {wrapper}-compressed Parquet "
                                                       "file; Parquet compresses internally: decompress the file")
                    return
                yield from read_parquet(raw, max_record_bytes)
                return
            stream, decoder = open_decompressed(raw)
            if fmt == "jsonl":
                yield from read_jsonl(stream, skipped, max_record_bytes)
            else:
                yield from read_warc(stream, skipped, max_record_bytes, html_main_content)
            if decoder is not None and decoder.truncated:
                yield RecordError(TRUNCATED_FILE, f"{name} ends in the middle of a {decoder.codec} block; "
                                                  "records before the damage were read, the rest of the file "
                                                  "is lost: re-fetch or re-compress the file")
    except Exception as e:  # noqa: BLE001 - any failure of a file must become an error row, not a crash
        yield RecordError(UNREADABLE_FILE, f"{name} could not be read past this point: "
                                           f"{type(e).__name__}: {str(e)[:300]}")


__all__ = ["FORMATS", "detect_format", "read_stream", "RawRecord", "RecordError", "SkippedRecords"]
