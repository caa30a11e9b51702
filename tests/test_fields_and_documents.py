import datetime as dt
import json

import pytest

from detectors import text_hash
from pipeline.documents import SourceFile, build_document
from pipeline.fields import PRESETS, mapping_from, parse_date
from pipeline.formats.records import RawRecord, RecordError

UTC = dt.timezone.utc
SOURCE = SourceFile("/data/crawl/shard-7.jsonl.gz", "crawl/shard-7.jsonl.gz", "jsonl", 100)

# Records as each corpus publishes them (layouts of ../shared/data/web and the projects' docs).
DOLMA = {"id": "http://a.example/1", "text": "Dolma text.", "source": "common-crawl",
         "added": "2023-04-07T15:24:38.743534+00:00", "created": "2020-03-29T09:04:10Z",
         "metadata": {"url": "http://a.example/1", "language": "en"}}
FINEWEB = {"text": "FineWeb text.", "id": "<urn:uuid:1>", "dump": "CC-MAIN-2013-20",
           "url": "http://b.example/", "date": "2013-05-18T07:24:47Z", "language": "en"}
DATATROVE_JSONL = {"text": "datatrove text.", "id": "<urn:uuid:2>",
                   "metadata": {"url": "http://c.example/", "date": "2024-01-02T03:04:05Z"}}
REDPAJAMA_V2 = {"raw_content": "RedPajama text.", "doc_id": "2023-06/0000/en_head.json.gz/0",
                "url": "http://d.example/", "date_download": "2023-06-05T11:00:00Z"}
REDPAJAMA_HF = {"raw_content": "RedPajama HF text.", "doc_id": "x/1",
                "meta": json.dumps({"url": "http://e.example/", "date_download": "2023-01-01T00:00:00Z"})}
C4 = {"text": "C4 text.", "timestamp": "2019-04-25T12:57:54Z", "url": "http://f.example/"}


@pytest.mark.parametrize("preset,record,expected", [
    ("dolma", DOLMA, ("Dolma text.", "http://a.example/1", "http://a.example/1", dt.datetime(2020, 3, 29, 9, 4, 10, tzinfo=UTC))),
    ("fineweb", FINEWEB, ("FineWeb text.", "<urn:uuid:1>", "http://b.example/", dt.datetime(2013, 5, 18, 7, 24, 47, tzinfo=UTC))),
    ("datatrove", DATATROVE_JSONL, ("datatrove text.", "<urn:uuid:2>", "http://c.example/", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))),
    ("redpajama", REDPAJAMA_V2, ("RedPajama text.", "2023-06/0000/en_head.json.gz/0", "http://d.example/", dt.datetime(2023, 6, 5, 11, tzinfo=UTC))),
    ("redpajama", REDPAJAMA_HF, ("RedPajama HF text.", "x/1", "http://e.example/", dt.datetime(2023, 1, 1, tzinfo=UTC))),
    ("c4", C4, ("C4 text.", "crawl/shard-7.jsonl.gz:3", "http://f.example/", dt.datetime(2019, 4, 25, 12, 57, 54, tzinfo=UTC))),
])
@pytest.mark.parametrize("use_auto", [False, True])
def test_presets_read_each_corpus_layout_unchanged(preset, record, expected, use_auto):
    mapping = PRESETS["auto" if use_auto else preset]
    doc = build_document(RawRecord(3, record), mapping, SOURCE)
    assert (doc["text"], doc["id"], doc["url"], doc["date"]) == expected
    assert doc["flags"] == []


def test_overrides_take_comma_separated_dotted_paths_first_present_wins():
    mapping = mapping_from("auto", text="body.main,body.alt", id="meta.key", date="meta.when")
    doc = build_document(RawRecord(0, {"body": {"alt": "alt text"}, "meta": {"key": 42, "when": 1700000000}}),
                         mapping, SOURCE)
    assert doc["text"] == "alt text" and doc["id"] == "42"
    assert doc["date"] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert json.loads(doc["source_fields"]) == {"body": {}, "meta": {"key": 42, "when": 1700000000}}


def test_unknown_preset_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose one of"):
        mapping_from("pile")


def test_other_fields_are_carried_through_and_the_text_is_not():
    doc = build_document(RawRecord(0, DOLMA), PRESETS["dolma"], SOURCE)
    carried = json.loads(doc["source_fields"])
    assert "text" not in carried
    assert carried["metadata"] == DOLMA["metadata"] and carried["added"] == DOLMA["added"]


def test_written_text_is_never_normalised_but_the_hash_is():
    text = "Ｆｕｌｌ-width\u200b and  spaced\n"
    doc = build_document(RawRecord(0, {"text": text}), PRESETS["auto"], SOURCE)
    assert doc["text"] == text
    assert doc["text_hash"] == text_hash("Full-width and spaced")


def test_derived_ids_are_stable_and_unique_per_record():
    a = build_document(RawRecord(5, {"text": "x"}), PRESETS["auto"], SOURCE)
    b = build_document(RawRecord(5, {"text": "x"}), PRESETS["auto"], SOURCE)
    c = build_document(RawRecord(6, {"text": "x"}), PRESETS["auto"], SOURCE)
    assert a["id"] == b["id"] == "crawl/shard-7.jsonl.gz:5" and c["id"] != a["id"]
    assert a["key"] == b["key"] != c["key"]


@pytest.mark.parametrize("fields,kind", [
    ({"title": "no text"}, "missing_text"),
    ({"text": None}, "missing_text"),
    ({"text": 12}, "text_not_string"),
    ({"text": ["a"]}, "text_not_string"),
    ({"text": " \n\t "}, "empty_text"),
    ({"text": "lone \ud800 surrogate"}, "invalid_unicode"),
    ({"text": "fine", "other": "lone \udfff"}, "invalid_unicode"),
])
def test_records_without_usable_text_become_errors_with_an_excerpt(fields, kind):
    out = build_document(RawRecord(9, fields, byte_offset=77), PRESETS["auto"], SOURCE)
    assert isinstance(out, RecordError) and out.kind == kind
    assert out.position == 9 and out.byte_offset == 77 and out.raw_excerpt


def test_unparseable_date_keeps_the_document_and_flags_it():
    doc = build_document(RawRecord(0, {"text": "t", "date": "last tuesday"}), PRESETS["auto"], SOURCE)
    assert doc["date"] is None and doc["flags"] == ["date_unparseable"]


@pytest.mark.parametrize("value,expected", [
    ("2024-05-18T01:58:10Z", dt.datetime(2024, 5, 18, 1, 58, 10, tzinfo=UTC)),
    ("2024-05-18T03:58:10+02:00", dt.datetime(2024, 5, 18, 1, 58, 10, tzinfo=UTC)),
    ("2024-05-18", dt.datetime(2024, 5, 18, tzinfo=UTC)),
    (dt.date(2024, 5, 18), dt.datetime(2024, 5, 18, tzinfo=UTC)),
    (1_700_000_000_000, dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("yesterday", None), (True, None), ({"y": 1}, None), (10**30, None),
])
def test_parse_date(value, expected):
    assert parse_date(value) == expected
