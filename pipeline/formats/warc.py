"""WARC and WET: response records (HTML extracted to text) and conversion records (plain text)."""
from __future__ import annotations

from typing import BinaryIO, Iterator

from warcio.archiveiterator import ArchiveIterator
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from pipeline.formats.records import (
    BAD_CONTENT_LENGTH, INVALID_UTF8, NON_TEXT_PAYLOAD, RECORD_TOO_LARGE, TRUNCATED_RECORD, RawRecord, RecordError, SkippedRecords,
)

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_PLAIN_TYPES = ("text/plain",)


def html_to_text(html: bytes, main_content: bool = True) -> str:
    """Decode HTML bytes (charset sniffed) and extract its readable text with Resiliparse.

    main_content drops navigation, footers and other boilerplate blocks.
    """
    decoded = bytes_to_str(html, detect_encoding(html))
    return extract_plain_text(decoded, main_content=main_content, alt_texts=False)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def read_warc(stream: BinaryIO, skipped: SkippedRecords, max_record_bytes: int,
              html_main_content: bool = True) -> Iterator[RawRecord | RecordError]:
    """Yield one record per response/conversion record; count all others in `skipped`.

    Fields: text, id (WARC-Record-ID), url, date (WARC-Date), warc_type, content_type,
    and content_language when the WET record names one.
    """
    records = ArchiveIterator(stream, check_digests=False)
    for position, record in enumerate(records):
        rtype = record.rec_type
        if rtype not in ("response", "conversion"):
            skipped.add(f"warc_{rtype}")
            continue
        headers = record.rec_headers
        declared = int(headers.get_header("Content-Length") or 0)
        if declared > max_record_bytes:
            excerpt = record.content_stream().read(1024)
            yield RecordError(RECORD_TOO_LARGE,
                              f"WARC record is {declared} bytes, over the {max_record_bytes}-byte limit "
                              "(raise --max-record-bytes to read it)",
                              position, records.get_record_offset(), excerpt, declared)
            continue
        # Content-Encoding (gzip, br) is undone here, so a small record can expand: read one
        # byte past the limit, never the whole payload.
        body = record.content_stream().read(max_record_bytes + 1)
        errors_before = records.err_count
        offset = records.get_record_offset()  # reads to the record's end and checks what follows it
        missing = getattr(record.raw_stream, "limit", 0)
        if missing:  # the stream ended before the record's declared Content-Length
            yield RecordError(TRUNCATED_RECORD,
                              f"WARC record ends {missing} bytes short of its Content-Length {declared}; "
                              "the file is cut or the length is wrong",
                              position, offset, body, len(body))
            continue
        # The declared length must end the record: warcio then finds blank lines and the next
        # record's "WARC/" line, or the end of the gzip member. A short length can also end just
        # before a line break, where the first check alone would not notice.
        following = records.next_line
        if records.err_count > errors_before or (following and not following.startswith(b"WARC/")):
            yield RecordError(BAD_CONTENT_LENGTH,
                              f"WARC record's Content-Length {declared} does not end where the record does "
                              "(no blank line follows it), so its text would be cut or run into the next record",
                              position, offset, body, len(body))
            continue
        if len(body) > max_record_bytes:
            yield RecordError(RECORD_TOO_LARGE,
                              f"WARC record's payload decodes (Content-Encoding) to over the {max_record_bytes}-byte "
                              "limit (raise --max-record-bytes to read it)", position, offset, body, len(body))
            continue
        if rtype == "response":
            content_type = record.http_headers.get_header("Content-Type") if record.http_headers else None
            media = _media_type(content_type)
            if media in _HTML_TYPES:
                text = html_to_text(body, html_main_content)
            elif media in _PLAIN_TYPES:
                text = bytes_to_str(body, detect_encoding(body))
            else:
                yield RecordError(NON_TEXT_PAYLOAD,
                                  f"response payload is {media or 'of no stated type'}, not HTML or plain text",
                                  position, offset, body, len(body))
                continue
        else:
            content_type = headers.get_header("Content-Type")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as e:
                yield RecordError(INVALID_UTF8, f"WET conversion record is not valid UTF-8: {e.reason} "
                                                f"at byte {e.start}", position, offset, body, len(body))
                continue
        fields = {
            "text": text,
            "id": headers.get_header("WARC-Record-ID"),
            "url": headers.get_header("WARC-Target-URI"),
            "date": headers.get_header("WARC-Date"),
            "warc_type": rtype,
            "content_type": content_type,
        }
        language = headers.get_header("WARC-Identified-Content-Language")
        if language:
            fields["content_language"] = language
        yield RawRecord(position, fields, offset)
