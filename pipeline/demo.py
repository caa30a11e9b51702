"""The demo corpus: a few small shards in every supported format, with exact duplicates
and malformed records, written byte-for-byte the same on every call.

`firsthand demo --output DIR` writes it; examples/demo/ holds a copy.
"""
from __future__ import annotations

import gzip
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

# Short original texts, written for this demo: each over 300 characters, so the detectors judge it
# (detectors/stack.MIN_CHARS_TO_JUDGE).
TEXTS = [
    "The river flooded the lower fields again this spring, and the farmers moved their sheep to the ridge "
    "before the water reached the fences. Nobody in the village remembers a wetter April. "
    "The ferry stopped for two days, the post came by tractor, and the pub ran out of crisps "
    "on the Saturday, which people still talk about.",
    "Our bakery opens at six. The rye loaf sells out first, usually by nine, so ask us to keep one aside "
    "if you are coming later. We close on Mondays to rest the sourdough and ourselves. "
    "In August we bake less, because half the street is on holiday and the oven makes the "
    "shop too hot to stand in after ten.",
    "The committee voted four to three to repave Elm Street in July. Residents asked for the work to "
    "start after the school term ends, and the council agreed to publish a detour map next week. "
    "Two shop owners said the last repairs took twice as long as promised; the chair said "
    "this contract has a penalty clause.",
    "I replaced the bottom bracket on my old steel bike last night. The cups were seized, so it took "
    "penetrating oil, a long breaker bar and a lot of patience, but it spins quietly now. "
    "Next job is the headset, which creaks on every climb. I will probably need to borrow "
    "the cup press from the club again.",
    "Tide tables for the harbour are posted at the ferry office. Spring tides this month reach 5.2 metres; "
    "moor with slack lines and check them at low water. The harbour master asks visiting "
    "boats to raft up on the north wall and to keep the slipway clear on Saturday mornings, "
    "when the rowing club launches.",
    "She learned to knit from her grandmother, who never used a pattern and counted stitches under her "
    "breath in Welsh. The scarf she made that winter was uneven and warm. She still has it, "
    "grey and red, with a dropped stitch near one end that she never went back to fix "
    "because, she says, it marks the day the cat arrived.",
    "Library hours change on 1 September: weekdays 9 to 7, Saturdays 10 to 4. The reading room stays "
    "closed while the roof is repaired. Returns can go in the box by the side door, and "
    "the Tuesday story hour moves to the community hall until the scaffolding comes down, "
    "probably in October, weather permitting.",
    "To descale a kettle, fill it halfway with equal parts water and white vinegar, boil, leave it for an "
    "hour, then rinse twice. Lemon juice works too and smells better. If you live in a "
    "hard water area, do it every month or so; the scale flakes off into your tea otherwise, "
    "and the element works harder.",
    "The match was called off at half time when the floodlights failed. The referee said it will be "
    "replayed in full, and tickets from tonight remain valid. Fans waited in the dark for "
    "twenty minutes before the announcement, and the away end sang the whole time, which "
    "the home stewards took in good humour.",
    "Certainly! Here's a comprehensive overview of the topic. In today's fast-paced world, it is crucial "
    "to delve into the intricate tapestry of factors that underscore this pivotal issue. "
    "Moreover, by fostering a holistic understanding, stakeholders can navigate these "
    "multifaceted challenges and unlock transformative opportunities for growth.",
    "Our hiking group meets at the trailhead car park at eight on Sundays. Bring water, a snack and "
    "boots with a good grip: the north path is muddy after rain. We walk about twelve "
    "kilometres and stop for lunch at the old quarry. Dogs are welcome on a lead, and "
    "newcomers should ask for Gwen, who carries the first-aid kit.",
    "The museum's new exhibit shows tools from a Bronze Age settlement found under a supermarket car park. "
    "The sickle blades still carry the marks of the stones used to sharpen them. Entry is "
    "free on the first Sunday of the month, and the volunteers run a handling table where "
    "children can hold a replica axe.",
    "Встреча жильцов дома состоится в четверг в семь часов вечера во дворе. Обсудим ремонт крыши и "
    "график уборки подъезда. Просим принести предложения по озеленению двора и по "
    "установке новых скамеек. Если пойдёт дождь, встреча пройдёт в помещении библиотеки на "
    "первом этаже соседнего дома. Приходите всей семьёй.",
    "As an AI language model, I do not have personal opinions, but I can offer a balanced summary of "
    "the arguments that are commonly made on both sides. It is important to note that "
    "perspectives on this topic vary widely, and a comprehensive understanding requires "
    "considering the broader context and the evidence.",
]

HTML_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<main><article><h1>{title}</h1><p>{body}</p></article></main>
<footer>Copyright demo site</footer></body></html>"""


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def _lines(records: list) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode()) + b"\n"
                    for r in records)


def _warc_record(headers: list[tuple[str, str]], block: bytes) -> bytes:
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"Content-Length: {len(block)}\r\n\r\n"
    return _gzip(head.encode() + block + b"\r\n\r\n")  # one gzip member per record, as Common Crawl does


def _warc(records: list[tuple[str, str, str, str, bytes]], wet: bool) -> bytes:
    """records: (type, url, date, record id, block)."""
    out = [_warc_record([("WARC-Type", "warcinfo"), ("WARC-Date", "2024-05-18T00:00:00Z"),
                         ("WARC-Record-ID", "<urn:uuid:00000000-0000-4000-8000-000000000000>"),
                         ("Content-Type", "application/warc-fields")], b"software: firsthand demo\r\n")]
    for rtype, url, date, rid, block in records:
        headers = [("WARC-Type", rtype), ("WARC-Target-URI", url), ("WARC-Date", date),
                   ("WARC-Record-ID", f"<urn:uuid:{rid}>")]
        if wet:
            headers.append(("Content-Type", "text/plain"))
        elif rtype in ("response", "request"):
            headers.append(("Content-Type", f"application/http; msgtype={rtype}"))
        out.append(_warc_record(headers, block))
    return b"".join(out)


def _http_response(content_type: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def demo_files() -> dict[str, bytes]:
    """File name -> bytes of every demo shard."""
    t = TEXTS
    files: dict[str, bytes] = {}
    # Plain JSON Lines, generic field names, with malformed lines of several kinds.
    files["news-00.jsonl"] = _lines([
        {"id": "news-1", "text": t[0], "url": "https://example.org/news/flood", "date": "2024-04-30"},
        {"id": "news-2", "text": t[2], "url": "https://example.org/news/elm-street", "date": "2024-05-02T08:00:00Z"},
        {"id": "news-3", "text": t[6], "url": "https://example.org/news/library", "date": "2024-08-20"},
        b'{"id": "news-4", "text": "an unterminated string}',
        b'["a", "JSON", "array", "not", "an", "object"]',
        {"id": "news-5", "title": "a record with no text field"},
        b"",
        {"id": "news-6", "text": t[8], "url": "https://example.org/news/floodlights", "date": "not a date"},
        {"id": "news-7", "text": "   "},
        {"id": "news-8", "text": t[9], "url": "https://example.org/news/overview", "date": "2024-06-01"},
    ])
    # Dolma layout, gzip. news-1's text again with different spacing and an earlier date:
    # this copy must become the cluster's representative.
    files["dolma-01.jsonl.gz"] = _gzip(_lines([
        {"id": "dolma-a", "text": t[0].replace(". ", ".  ") + "\n", "source": "common-crawl",
         "added": "2024-06-01T00:00:00Z", "created": "2024-04-28T10:00:00Z",
         "metadata": {"url": "https://mirror.example.net/flood"}},
        {"id": "dolma-b", "text": t[1], "source": "common-crawl", "added": "2024-06-01T00:00:00Z",
         "created": "2024-03-11T09:30:00Z", "metadata": {"url": "https://bakery.example.com/"}},
        {"id": "dolma-c", "text": t[3], "source": "common-crawl", "added": "2024-06-01T00:00:00Z",
         "created": "2024-02-02T19:45:00Z", "metadata": {"url": "https://blog.example.com/bike"}},
        {"id": "news-2", "text": t[11], "source": "common-crawl", "added": "2024-06-01T00:00:00Z",
         "created": "2024-01-15T12:00:00Z", "metadata": {"url": "https://museum.example.org/exhibit"}},
    ]))
    # datatrove / FineWeb JSON Lines layout, zstd; one line of invalid UTF-8.
    files["fineweb-02.jsonl.zst"] = zstandard.ZstdCompressor(level=3).compress(_lines([
        {"text": t[4], "id": "<urn:uuid:5f1a0000-0000-4000-8000-000000000001>",
         "metadata": {"dump": "CC-MAIN-2024-22", "url": "https://harbour.example.com/tides", "date": "2024-05-20T06:00:00Z"}},
        {"text": t[5], "id": "<urn:uuid:5f1a0000-0000-4000-8000-000000000002>",
         "metadata": {"dump": "CC-MAIN-2024-22", "url": "https://stories.example.com/knit", "date": "2024-05-21T06:00:00Z"}},
        b'{"text": "caf\xe9 au lait", "id": "bad-bytes"}',
        {"text": t[1], "id": "<urn:uuid:5f1a0000-0000-4000-8000-000000000003>",
         "metadata": {"dump": "CC-MAIN-2024-22", "url": "https://copy.example.com/bakery", "date": "2024-05-22T06:00:00Z"}},
        {"text": t[12], "id": "<urn:uuid:5f1a0000-0000-4000-8000-000000000004>",
         "metadata": {"dump": "CC-MAIN-2024-22", "url": "https://dom.example.ru/", "date": "2024-05-23T06:00:00Z"}},
    ]))
    # C4 layout, Parquet, no ids: ids are derived from file and row.
    c4 = pa.table({
        "text": [t[7], t[10], t[13], t[3]],
        "url": ["https://kitchen.example.com/kettle", "https://hikers.example.org/sundays",
                "https://chat.example.com/answer", "https://copy.example.com/bike"],
        "timestamp": ["2019-04-25T12:57:54Z", "2019-04-26T08:00:00Z", "2023-03-01T10:00:00Z", "2019-01-01T00:00:00Z"],
    })
    buf = io.BytesIO()
    pq.write_table(c4, buf, compression="zstd")
    files["c4-03.parquet"] = buf.getvalue()
    # RedPajama-V2 layout: text in raw_content.
    files["redpajama-04.jsonl"] = _lines([
        {"raw_content": t[8], "doc_id": "2023-06/0000/en_head.json.gz/0", "url": "https://sport.example.com/match",
         "date_download": "2023-06-05T11:00:00Z", "source_domain": "sport.example.com"},
    ])
    # WARC: two HTML pages (one repeats a text already seen), an image, request records.
    warc_records = []
    for i, (url, title, body) in enumerate([
        ("https://walks.example.org/trail", "Sunday walks", t[10]),
        ("https://copy.example.com/library", "Library news", t[6]),
    ]):
        rid = f"00000000-0000-4000-8000-0000000001{i:02d}"
        warc_records.append(("request", url, "2024-05-18T01:00:00Z", rid.replace("-0000000001", "-0000000002"),
                             f"GET / HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n\r\n".encode()))
        html = HTML_PAGE.format(title=title, body=body).encode()
        warc_records.append(("response", url, "2024-05-18T01:00:00Z", rid, _http_response("text/html; charset=utf-8", html)))
    warc_records.append(("response", "https://walks.example.org/logo.png", "2024-05-18T01:00:01Z",
                         "00000000-0000-4000-8000-000000000199",
                         _http_response("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)))))
    files["crawl-05.warc.gz"] = _warc(warc_records, wet=False)
    files["crawl-05.warc.wet.gz"] = _warc([
        ("conversion", "https://walks.example.org/trail", "2024-05-18T01:00:00Z",
         "00000000-0000-4000-8000-000000000301", ("Sunday walks\n" + t[10]).encode()),
    ], wet=True)
    # A gzip file cut off mid-stream: the records before the damage are read.
    whole = _gzip(_lines([{"id": f"cut-{i}", "text": f"Line {i} of a file that will be cut short. " * 20}
                          for i in range(40)]))
    files["broken-06.jsonl.gz"] = whole[: len(whole) * 2 // 3]
    return files


def write_demo(folder: str) -> list[str]:
    """Write the demo corpus into folder (created if needed); return the paths written."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, data in demo_files().items():
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths
