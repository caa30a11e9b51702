"""JSON Lines: one JSON object per line, read in bounded memory."""
from __future__ import annotations

import json
from typing import BinaryIO, Iterator

from pipeline.formats.records import (
    INVALID_JSON, INVALID_UTF8, NOT_AN_OBJECT, RECORD_TOO_LARGE,
    RawRecord, RecordError, SkippedRecords,
)


def _lines(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield (line or its first max_bytes, full size, byte offset) without holding more than max_bytes."""
    offset = 0
    while True:
        line = stream.readline(max_bytes + 1)
        if not line:
            return
        size = len(line)
        if size > max_bytes and not line.endswith(b"\n"):
            head = line
            while line and not line.endswith(b"\n"):  # skip the rest of an over-long line
                line = stream.readline(1 << 20)
                size += len(line)
            yield head, size, offset
        else:
            yield line, size, offset
        offset += size


def read_jsonl(stream: BinaryIO, skipped: SkippedRecords,
               max_record_bytes: int) -> Iterator[RawRecord | RecordError]:
    """Parse a decompressed JSON Lines stream; blank lines are counted in `skipped`, not yielded."""
    for position, (line, size, offset) in enumerate(_lines(stream, max_record_bytes)):
        if size > max_record_bytes:
            yield RecordError(RECORD_TOO_LARGE,
                              f"line is {size} bytes, over the {max_record_bytes}-byte limit "
                              "(raise --max-record-bytes to read it)",
                              position, offset, line, size)
            continue
        if not line.strip():
            skipped.add("blank_line")
            continue
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as e:
            yield RecordError(INVALID_UTF8, f"line is not valid UTF-8: {e.reason} at byte {e.start}",
                              position, offset, line, size)
            continue
        try:
            value = json.loads(decoded)
        except (ValueError, RecursionError) as e:
            yield RecordError(INVALID_JSON, f"line is not valid JSON: {str(e)[:200]}",
                              position, offset, line, size)
            continue
        if not isinstance(value, dict):
            yield RecordError(NOT_AN_OBJECT,
                              f"line is a JSON {type(value).__name__}, expected an object with a text field",
                              position, offset, line, size)
            continue
        yield RawRecord(position, value, offset)
