"""Each format reader on real-format fixtures, and every kind of malformed input."""
import io

import pyarrow as pa
import pytest

from pipeline.formats import detect_format, read_stream
from pipeline.formats.records import RawRecord, RecordError, SkippedRecords
from tests.helpers import gz, http_response, jsonl_bytes, parquet_bytes, warc_member, zst

MAX = 1 << 20


def read(data: bytes, fmt: str, max_record_bytes: int = MAX):
    skipped = SkippedRecords()
    out = list(read_stream(lambda: io.BytesIO(data), fmt, skipped, max_record_bytes, name="test-file"))
    return out, skipped.counts


def kinds(items):
    return [i.kind for i in items if isinstance(i, RecordError)]


@pytest.mark.parametrize("name,fmt", [
    ("a.jsonl", "jsonl"), ("a.json.gz", "jsonl"), ("a.jsonl.zst", "jsonl"), ("A.NDJSON.ZSTD", "jsonl"),
    ("a.parquet", "parquet"), ("x/y.warc.gz", "warc"), ("CC-1.warc.wet.gz", "wet"),
    ("CC-1.warc.wat.gz", "wat"), ("notes.txt", None), ("data.gz", None),
])
def test_format_from_name(name, fmt):
    assert detect_format(name) == fmt


def test_jsonl_records_and_positions_count_every_line():
    data = jsonl_bytes([{"text": "a"}, b"", {"text": "b"}])
    out, skipped = read(data, "jsonl")
    assert [(r.position, r.fields["text"]) for r in out] == [(0, "a"), (2, "b")]
    assert skipped == {"blank_line": 1}


def test_jsonl_malformed_lines_become_errors_and_reading_goes_on():
    data = jsonl_bytes([
        b'{"text": "unterminated',
        b"[1, 2, 3]",
        b'{"text": "caf\xe9"}',
        b"\x00\x01\x02 binary",
        b"[" * 100_000 + b"]" * 100_000,
        {"text": "still read"},
    ])
    out, _ = read(data, "jsonl")
    assert kinds(out) == ["invalid_json", "not_an_object", "invalid_utf8", "invalid_json", "invalid_json"]
    assert [e.position for e in out if isinstance(e, RecordError)] == [0, 1, 2, 3, 4]
    assert out[-1].fields == {"text": "still read"}
    assert all(len(e.raw_excerpt) <= 1024 for e in out if isinstance(e, RecordError))


def test_jsonl_over_long_line_is_an_error_read_in_bounded_memory():
    data = jsonl_bytes([{"text": "x" * 5000}, {"text": "short"}])
    out, _ = read(data, "jsonl", max_record_bytes=1000)
    assert kinds(out) == ["record_too_large"]
    assert out[0].raw_size == 5000 + len('{"text": ""}\n') and len(out[0].raw_excerpt) <= 1024
    assert out[1].position == 1 and out[1].fields["text"] == "short"


@pytest.mark.parametrize("compress", [gz, zst])
def test_truncated_compressed_jsonl_keeps_records_before_the_damage(compress):
    blob = compress(jsonl_bytes([{"text": f"record number {i} " + "padding " * i} for i in range(400)]))
    out, _ = read(blob[: len(blob) // 2], "jsonl")
    records = [r for r in out if isinstance(r, RawRecord)]
    assert 10 < len(records) < 400
    assert [r.fields["text"].split()[2] for r in records] == [str(i) for i in range(len(records))]
    # the cut line itself is reported where it starts, then the truncation for the file
    assert kinds(out)[-1] == "truncated_file" and out[-1].position is None
    assert kinds(out)[:-1] in ([], ["invalid_json"])


def test_parquet_rows_with_nested_fields():
    table = pa.table({"text": ["one", "two"], "meta": [{"url": "https://a"}, {"url": "https://b"}]})
    out, _ = read(parquet_bytes(table), "parquet")
    assert [(r.position, r.fields["meta"]["url"]) for r in out] == [(0, "https://a"), (1, "https://b")]


def test_corrupt_parquet_footer_is_one_unreadable_file_error():
    data = parquet_bytes(pa.table({"text": ["one"]}))
    out, _ = read(data[:-12] + b"\x00" * 12, "parquet")
    assert kinds(out) == ["unreadable_file"]


def test_random_binary_as_parquet_or_warc_is_an_error_not_a_crash():
    junk = bytes(range(256)) * 40
    for fmt in ("parquet", "warc"):
        out, _ = read(junk, fmt)
        assert kinds(out) == ["unreadable_file"], fmt


def test_unknown_format_and_wat_are_file_errors():
    assert kinds(read(b"hello", None)[0]) == ["unknown_format"]
    assert kinds(read(b"hello", "wat")[0]) == ["unknown_format"]


HTML = (b"<html><head><title>T</title></head><body><nav>Home | About</nav><main><article>"
        b"<h1>Harbour tides</h1><p>Spring tides this month reach five metres at the north quay. "
        b"Moor with slack lines and check them at low water.</p></article></main></body></html>")


def common_crawl_warc() -> bytes:
    """warcinfo, then a request/response/metadata triple, an image response and a text response."""
    return b"".join([
        warc_member("warcinfo", b"isPartOf: CC-MAIN-2024-22\r\n", content_type="application/warc-fields"),
        warc_member("request", b"GET / HTTP/1.1\r\nHost: harbour.example\r\n\r\n", url="https://harbour.example/",
                    content_type="application/http; msgtype=request"),
        warc_member("response", http_response(HTML), url="https://harbour.example/",
                    record_id="<urn:uuid:aaaaaaaa-0000-4000-8000-000000000001>",
                    content_type="application/http; msgtype=response"),
        warc_member("metadata", b"fetchTimeMs: 12\r\n", url="https://harbour.example/",
                    content_type="application/warc-fields"),
        warc_member("response", http_response(b"\x89PNG....", "image/png"), url="https://harbour.example/logo.png",
                    content_type="application/http; msgtype=response"),
        warc_member("response", http_response("Plain words, ünïcode.".encode(), "text/plain; charset=utf-8"),
                    url="https://harbour.example/robots", content_type="application/http; msgtype=response"),
    ])


def test_warc_response_html_is_extracted_and_other_records_counted():
    out, skipped = read(common_crawl_warc(), "warc")
    docs = [r for r in out if isinstance(r, RawRecord)]
    assert skipped == {"warc_warcinfo": 1, "warc_request": 1, "warc_metadata": 1}
    assert kinds(out) == ["non_text_payload"] and out[1].position == 4
    html_doc = docs[0].fields
    assert "Spring tides this month reach five metres" in html_doc["text"]
    assert "<p>" not in html_doc["text"]
    assert html_doc["url"] == "https://harbour.example/" and html_doc["date"] == "2024-05-18T01:58:10Z"
    assert html_doc["id"] == "<urn:uuid:aaaaaaaa-0000-4000-8000-000000000001>"
    assert docs[0].position == 2
    assert docs[1].fields["text"] == "Plain words, ünïcode."


def test_wet_conversion_records_are_documents():
    wet = b"".join([
        warc_member("warcinfo", b"isPartOf: CC-MAIN-2024-22\r\n"),
        warc_member("conversion", "Escopete\nUna planta.".encode(), url="https://an.wikipedia.org/wiki/Escopete",
                    content_type="text/plain"),
        warc_member("conversion", b"bad \xff bytes", url="https://x.example/", content_type="text/plain"),
    ])
    out, skipped = read(wet, "wet")
    assert out[0].fields["text"] == "Escopete\nUna planta." and out[0].fields["warc_type"] == "conversion"
    assert kinds(out) == ["invalid_utf8"]
    assert skipped == {"warc_warcinfo": 1}


@pytest.mark.parametrize("cut", [25, 40, 60])
def test_truncated_warc_keeps_complete_records_and_never_a_partial_one(cut):
    blob = common_crawl_warc()
    out, _ = read(blob[: len(blob) - cut], "warc")
    assert [r.fields["url"] for r in out if isinstance(r, RawRecord)] == ["https://harbour.example/"]
    assert kinds(out)[0] == "non_text_payload" and kinds(out)[-1] == "truncated_file"
    assert set(kinds(out)[1:-1]) <= {"truncated_record", "non_text_payload"}


def test_warc_record_whose_content_length_lies_is_an_error():
    member = warc_member("conversion", b"short text", url="https://x.example/", content_type="text/plain")
    import gzip
    raw = gzip.decompress(member).replace(b"Content-Length: 10", b"Content-Length: 99")
    out, _ = read(raw, "wet")
    assert kinds(out) == ["truncated_record"]


def _with_content_length(member: bytes, change: int) -> bytes:
    """A WARC member whose Content-Length header says `change` bytes more (or fewer) than it holds."""
    import gzip
    import re
    raw = gzip.decompress(member)
    declared = int(re.search(rb"Content-Length: (\d+)", raw).group(1))
    return gz(raw.replace(b"Content-Length: %d" % declared, b"Content-Length: %d" % (declared + change), 1))


def test_warc_content_length_too_small_is_an_error_not_a_cut_text_and_reading_goes_on():
    page = http_response(b"<html><body><p>" + b"A sentence on a page of the web. " * 30 + b"</p></body></html>")
    lying = _with_content_length(warc_member("response", page, url="https://lies.example/"), -120)
    honest = warc_member("response", page, url="https://honest.example/")
    for blob in (lying + honest, __import__("gzip").decompress(lying + honest)):   # per-member gzip and plain
        out, _ = read(blob, "warc")
        assert kinds(out) == ["bad_content_length"]
        assert [r.fields["url"] for r in out if isinstance(r, RawRecord)] == ["https://honest.example/"]


def test_warc_content_length_cut_just_before_a_line_break_is_still_caught():
    """warcio sees a blank line there, as after an honest record: the line after it must be the
    next record's header or the end of the gzip member."""
    page = http_response(b"<html><body><p>First paragraph of the page.</p>\r\n<p>Second paragraph.</p></body></html>")
    member = warc_member("response", page, url="https://cut.example/")
    cut = len(page) - page.index(b"\r\n<p>Second")
    lying = _with_content_length(member, -cut)
    honest = warc_member("response", page, url="https://honest.example/")
    for blob in (lying + honest, __import__("gzip").decompress(lying + honest)):
        out, _ = read(blob, "warc")
        assert kinds(out)[0] == "bad_content_length"
        assert not any(isinstance(r, RawRecord) and r.fields["url"] == "https://cut.example/" for r in out)


def test_warc_content_length_too_large_is_an_error_and_the_lost_rest_is_reported():
    page = http_response(b"<html><body><p>" + b"A sentence on a page of the web. " * 30 + b"</p></body></html>")
    lying = _with_content_length(warc_member("response", page, url="https://lies.example/"), +100)
    out, _ = read(lying + warc_member("response", page, url="https://next.example/"), "warc")
    assert kinds(out) == ["bad_content_length", "unreadable_file"]
    assert not [r for r in out if isinstance(r, RawRecord)]


def test_warc_payload_over_the_limit_once_content_encoding_is_undone_is_an_error():
    import gzip
    body = gzip.compress(b"<p>" + b"a" * (3 * MAX) + b"</p>")
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body
    small = http_response(b"<p>fine</p>")
    out, _ = read(warc_member("response", response, url="https://big.example/")
                  + warc_member("response", small, url="https://small.example/"), "warc")
    assert kinds(out) == ["record_too_large"]
    assert "Content-Encoding" in next(o for o in out if isinstance(o, RecordError)).message
    assert [r.fields["url"] for r in out if isinstance(r, RawRecord)] == ["https://small.example/"]


def test_parquet_row_over_the_limit_is_an_error_and_its_neighbours_are_read():
    table = pa.table({"text": ["small", "x" * (MAX + 1), None, "also small"], "id": ["a", "b", "c", "d"]})
    out, _ = read(parquet_bytes(table), "parquet")
    assert [(type(o).__name__, o.position) for o in out] == [
        ("RawRecord", 0), ("RecordError", 1), ("RawRecord", 2), ("RawRecord", 3)]
    assert kinds(out) == ["record_too_large"] and out[1].raw_size == MAX + 2


@pytest.mark.parametrize("column", [
    pa.array(["small", "x" * (MAX + 1)]).dictionary_encode(),           # e.g. a pandas categorical
    pa.array([{"text": "small"}, {"text": "x" * (MAX + 1)}]),            # --text-field doc.text
    pa.array([["small"], ["x" * (MAX // 2 + 1), "y" * (MAX // 2 + 1)]]),  # a list of passages
    pa.array(["small", "x" * (MAX + 1)]).cast(pa.large_string()),
], ids=["dictionary", "struct", "list", "large_string"])
def test_parquet_text_over_the_limit_is_found_in_any_column_type(column):
    out, _ = read(parquet_bytes(pa.table({"doc": column})), "parquet")
    assert [type(o).__name__ for o in out] == ["RawRecord", "RecordError"] and kinds(out) == ["record_too_large"]


class _OneHugeLine(io.RawIOBase):
    """A stream of one `size`-byte JSON line, then a small one, made on the fly (never in memory)."""

    def __init__(self, size: int):
        self._head, self._left = b'{"text": "', size - len(b'{"text": "') - 3
        self._tail = b'"}\n{"text": "after"}\n'

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            chunk, self._head = self._head, b""
        elif self._left:
            chunk = b"a" * min(len(buffer), self._left)
            self._left -= len(chunk)
        else:
            chunk, self._tail = self._tail[: len(buffer)], self._tail[len(buffer):]
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_200_mb_line_at_the_default_limit_is_an_error_and_the_next_line_is_read():
    from pipeline.options import DEFAULT_MAX_RECORD_BYTES
    size = 200 << 20
    skipped = SkippedRecords()
    out = list(read_stream(lambda: io.BufferedReader(_OneHugeLine(size), 1 << 16), "jsonl", skipped,
                           DEFAULT_MAX_RECORD_BYTES, name="huge.jsonl"))
    assert kinds(out) == ["record_too_large"]
    assert out[0].raw_size == size and len(out[0].raw_excerpt) == 1024
    assert [r.fields["text"] for r in out if isinstance(r, RawRecord)] == ["after"]


@pytest.mark.parametrize("depth,kind", [(500, None), (200_000, "invalid_json")])
def test_deeply_nested_json_is_read_or_refused_never_a_crash(depth, kind):
    from pipeline.documents import SourceFile, build_document
    from pipeline.fields import PRESETS
    line = b'{"text": "nested", "meta": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}\n"
    out, _ = read(line, "jsonl", max_record_bytes=16 << 20)
    if kind:
        assert kinds(out) == [kind]
        return
    built = build_document(out[0], PRESETS["auto"], SourceFile("/in/x.jsonl", "x.jsonl", "jsonl", 1))
    assert built["text"] == "nested" and built["source_fields"].count("{") == depth + 1
