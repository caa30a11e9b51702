"""`firsthand report`: one self-contained HTML page about a finished run, computed from its
manifest and output shards only (cheap, re-runnable; `firsthand run` writes it at the end).

Counts, reasons, flags, clusters and the machine-written share come from the manifest, so
they agree with it. Distributions, composition, examples and tail retention come from the
document shards: all rows of a small run, an evenly spread sample of row groups (at most
--sample-rows documents, the same fraction from every table) of a large one.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.report_html import render
from pipeline.manifest import write_file
from pipeline.options import ConfigError
from pipeline.report_stats import (
    TailStats, compare_tails, domain_of, histogram, size_histogram, source_group,
)
from firsthand_reader.run_folder import missing_manifest_reason
from schemas import DOCUMENT_TABLES, MANIFEST, REASON_SYNTHETIC, REPORT

DEFAULT_SAMPLE_ROWS = 200_000
_COLUMNS = ["id", "text", "url", "date", "source_file", "dup_cluster_id", "dup_cluster_size", "dup_is_representative",
            "synthetic_probability", "synthetic_signals", "synthetic_evidence", "flags", "decision", "reasons"]
_TEXT_CHARS = 1_000   # per document: ~150 words for tail retention and excerpts, ~200 MB at most
_TAIL_TOKENS = 500_000   # per stream: bounds the tail figures' work and memory (~50 MB of tokens each)
_TOP = 10
# No script, no fetch: the page works offline, and text from the web inside it can never run.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass
class Sample:
    rows: pa.Table          # document rows (input = all of them; kept = decision "keep")
    documents: int          # documents the run wrote, of which `rows` is a sample
    exhaustive: bool


def read_manifest(output: str) -> dict[str, Any]:
    path = FileSystems.join(output, MANIFEST)
    if not FileSystems.exists(path):
        why = missing_manifest_reason(lambda name: FileSystems.exists(FileSystems.join(output, name)))
        raise ConfigError(f"cannot report on {output}: no {MANIFEST}: {why}")
    with FileSystems.open(path) as f:
        return json.load(f)


def _row_groups(paths: list[str]) -> list[tuple[str, int, int]]:
    units = []
    for path in paths:
        with FileSystems.open(path) as f:
            metadata = pq.ParquetFile(f).metadata
        units += [(path, i, metadata.row_group(i).num_rows) for i in range(metadata.num_row_groups)]
    return units


def _evenly(units: list[tuple[str, int, int]], budget: int, at_least: int = 8) -> list[tuple[str, int, int]]:
    """Units (files or row groups) spread evenly over the list: enough for `budget` rows, and at
    least `at_least` of them, since one row group holds a narrow range of ids (rows are sorted
    by id within a shard). The caller cuts the rows read down to the budget."""
    total = sum(rows for _, _, rows in units)
    if total <= budget:
        return units
    count = max(at_least, math.ceil(budget / (total / len(units))))
    if count >= len(units):
        return units
    return [units[i] for i in np.unique(np.linspace(0, len(units) - 1, count).round().astype(int))]


def _read_group(path: str, group: int) -> pa.Table:
    """One row group's report columns, text cut to its first _TEXT_CHARS characters; columns an
    older schema lacks come back as nulls."""
    with FileSystems.open(path) as f:
        parquet_file = pq.ParquetFile(f)
        present = [c for c in _COLUMNS if c in parquet_file.schema_arrow.names]
        table = parquet_file.read_row_group(group, columns=present)
    columns = {c: table.column(c) if c in present else pa.nulls(table.num_rows) for c in _COLUMNS}
    columns["text"] = pc.utf8_slice_codeunits(columns["text"], 0, _TEXT_CHARS)
    return pa.table(columns)


def load_sample(output: str, manifest: dict[str, Any], max_rows: int = DEFAULT_SAMPLE_ROWS) -> Sample:
    """The same fraction (max_rows / documents, at most 1) of every document table: files and
    then row groups spread evenly over each table, then a seeded random subset of their rows,
    so a small table (rejected/) is not over-represented by whole row groups. Shards hold
    records by a hash of their source position, so each shard is itself a random subset."""
    outputs = manifest["outputs"]
    tables = [t for t in DOCUMENT_TABLES if outputs.get(t)]
    documents = sum(f["rows"] for t in tables for f in outputs[t])
    fraction = min(1.0, max_rows / max(documents, 1))
    rng = np.random.default_rng(0)
    pieces = []
    for table in tables:
        files = [(FileSystems.join(output, f["path"]), -1, f["rows"]) for f in outputs[table]]
        want = round(fraction * sum(rows for _, _, rows in files))
        if want == 0:
            continue
        chosen = _evenly(_row_groups([path for path, _, _ in _evenly(files, want)]), want)
        rows = pa.concat_tables([_read_group(path, group) for path, group, _ in chosen])
        if rows.num_rows > want:
            rows = rows.take(np.sort(rng.choice(rows.num_rows, want, replace=False)))
        pieces.append(rows)
    rows = pa.concat_tables(pieces) if pieces else pa.table({c: pa.array([], pa.null()) for c in _COLUMNS})
    return Sample(rows, documents, fraction == 1.0)


# ---- figures ------------------------------------------------------------------------------

def _composition(keys: list[str], kept: np.ndarray) -> list[tuple[str, list[float]]]:
    every, kept_counts = Counter(keys), Counter(k for k, keep in zip(keys, kept) if keep)
    total, total_kept = max(len(keys), 1), max(int(kept.sum()), 1)
    top = [k for k, _ in every.most_common(_TOP)]
    rows = [(k, [every[k] / total, kept_counts[k] / total_kept]) for k in top]
    rest = [k for k in every if k not in top]
    if rest:
        rows.append((f"{len(rest):,} others", [sum(every[k] for k in rest) / total,
                                               sum(kept_counts[k] for k in rest) / total_kept]))
    return rows


def _signal_matrix(signals: pa.ChunkedArray, rows: int) -> tuple[list[str], np.ndarray]:
    """list<struct<name, score>> per row as a rows x signals matrix (NaN where absent), in Arrow."""
    if rows == 0 or not pa.types.is_list(signals.type):   # nulls only: an older schema without signals
        return [], np.zeros((rows, 0))
    lists = signals.combine_chunks()
    values = pc.list_flatten(lists)
    if len(values) == 0:
        return [], np.zeros((rows, 0))
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    names = pc.dictionary_encode(values.field("name"))
    matrix = np.full((rows, len(names.dictionary)), np.nan)
    matrix[parents, names.indices.to_numpy(zero_copy_only=False)] = \
        values.field("score").to_numpy(zero_copy_only=False).astype(np.float64)
    return names.dictionary.to_pylist(), matrix


def _signal_drivers(signals: pa.ChunkedArray, reasons: list[list[str]], kept: np.ndarray) -> list[tuple[str, float]]:
    """Each signal's mean among documents rejected as synthetic minus its mean among kept
    documents, in standard deviations of all scored documents: what set them apart."""
    rejected = np.array([REASON_SYNTHETIC in (r or ()) for r in reasons], dtype=bool)
    if not rejected.any() or not kept.any():
        return []
    names, matrix = _signal_matrix(signals, len(reasons))
    out = []
    for j, name in enumerate(names):
        column = matrix[:, j]
        if np.isnan(column[rejected]).all() or np.isnan(column[kept]).all():
            continue
        spread = np.nanstd(column)
        if np.isfinite(spread) and spread > 0:
            out.append((name, float((np.nanmean(column[rejected]) - np.nanmean(column[kept])) / spread)))
    return sorted(out, key=lambda item: (-abs(item[1]), item[0]))[:12]


_EXAMPLE_FIELDS = ("id", "text", "synthetic_probability", "synthetic_evidence", "dup_cluster_id",
                   "dup_is_representative")


def _examples(t: pa.Table, key: str, names: list[str], per_name: int = 3) -> dict[str, list[dict]]:
    """The first few rows (in sample order) carrying each reason or flag."""
    picked: dict[str, list[int]] = {n: [] for n in names}
    for i, values in enumerate(t.column(key).to_pylist()):
        for name in values or ():
            if name in picked and len(picked[name]) < per_name:
                picked[name].append(i)
    return {n: [{f: t.column(f)[i].as_py() for f in _EXAMPLE_FIELDS} for i in rows]
            for n, rows in picked.items() if rows}


def _chronological(rows: list[tuple[str, list[float]]]) -> list[tuple[str, list[float]]]:
    return sorted(rows, key=lambda r: (0, int(r[0])) if r[0].isdigit() else (1, r[0]))


def build_figures(manifest: dict[str, Any], sample: Sample) -> dict[str, Any]:
    """Everything the page shows, as plain data (also embedded in the page as JSON)."""
    t = sample.rows
    n = t.num_rows
    kept = np.array([d == "keep" for d in t.column("decision").to_pylist()], dtype=bool) if n else np.zeros(0, bool)
    probability = t.column("synthetic_probability").to_numpy(zero_copy_only=False).astype(np.float64) if n \
        else np.zeros(0)
    scored = ~np.isnan(probability)
    sources = [source_group(p) for p in t.column("source_file").to_pylist()]
    domains = [domain_of(u) for u in t.column("url").to_pylist()]
    years = [str(d.year) if d is not None else "(no date)" for d in t.column("date").to_pylist()]
    detect = manifest["stages"].get("detect") or {}
    threshold = detect.get("threshold")

    by_group: dict[str, dict[str, list[int]]] = {}
    for label, keys in (("source", sources), ("domain", domains)):
        groups = [k for k, _ in Counter(k for k, s in zip(keys, scored) if s).most_common(6)]
        by_group[label] = {g: histogram(probability[scored & np.array([k == g for k in keys])], 10) for g in groups}

    # A fixed shuffle: the shards list kept rows before rejected ones, and both streams are cut
    # to the same number of tokens, so in table order the input's first tokens would be the kept ones.
    order = np.random.default_rng(0).permutation(n)
    text = t.column("text")
    tails = compare_tails((text[int(i)].as_py() for i in order), (text[int(i)].as_py() for i in order if kept[i]),
                          max_tokens=_TAIL_TOKENS)
    representatives = t.filter(t.column("dup_is_representative")) if n else t
    dedup = manifest["stages"]["dedup"]
    return {
        "run": {k: manifest.get(k) for k in ("status", "schema_version", "firsthand_version", "started_at",
                                             "finished_at")} | {"mode": manifest["config"]["mode"],
                                                                "inputs": manifest["config"]["inputs"]},
        "counts": manifest["counts"],
        "sample": {"rows": n, "documents": sample.documents, "exhaustive": sample.exhaustive},
        "probability": {"threshold": threshold, "policy": detect.get("policy"),
                        "histogram": histogram(probability[scored], 20),
                        "scored": int(scored.sum()), "by_group": by_group},
        "drivers": _signal_drivers(t.column("synthetic_signals"), t.column("reasons").to_pylist(), kept & scored),
        "reason_examples": _examples(t, "reasons", sorted(manifest["counts"]["rejected_by_reason"])),
        "flag_examples": _examples(t, "flags", sorted(manifest["counts"]["flags"]), per_name=2),
        "clusters": {"with_duplicates": dedup["clusters_with_duplicates"],
                     "largest": dedup.get("largest_clusters", []),
                     "sizes": size_histogram(representatives.column("dup_cluster_size").to_pylist())},
        "composition": {"source": _composition(sources, kept), "domain": _composition(domains, kept),
                        "year": _chronological(_composition(years, kept))},
        "tails": _tails(tails),
        "share": detect.get("machine_written_share"),
        "held_out_rates": (detect.get("model") or {}).get("held_out_rates"),
    }


def _tails(pair: tuple[TailStats, TailStats] | None) -> dict[str, Any] | None:
    if pair is None:
        return None
    return {name: dataclasses.asdict(s) for name, s in zip(("input", "kept"), pair)}


def make_report(output: str, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> tuple[str, dict[str, Any]]:
    """The page for the run in `output`, and the figures on it."""
    manifest = read_manifest(output)
    figures = build_figures(manifest, load_sample(output, manifest, sample_rows))
    return render(figures, output, _CSP), figures


def write_report(output: str, sample_rows: int = DEFAULT_SAMPLE_ROWS, to: str | None = None) -> str:
    """Write the report (into the run folder by default) through Beam's FileSystems; return its path."""
    page, _ = make_report(output, sample_rows)
    folder, name = (output, REPORT) if to is None else FileSystems.split(to)
    write_file(folder, name, page.encode("utf-8"))
    return to or FileSystems.join(output, REPORT)
