"""`firsthand report`: one self-contained HTML page about a finished run, computed from its
manifest and output shards only (cheap, re-runnable; `firsthand run` writes it at the end).

Counts, reasons, flags, clusters and the machine-written share come from the manifest, so
they agree with it. Distributions, composition, examples and tail retention come from the
document shards: all rows of a small run, an evenly spread sample of row groups (at most
--sample-rows documents, the same fraction from every table) of a large one.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.report_html import render
from pipeline.manifest import write_file
from pipeline.options import ConfigError
from pipeline.report_stats import (
    TailStats, compare_tails, domain_of, histogram, size_histogram, source_group,
)
from schemas import (
    DOCUMENT_TABLES, FAILED_MANIFEST, MANIFEST, REASON_SYNTHETIC, REPORT, UNCHECKED_MANIFEST,
)

DEFAULT_SAMPLE_ROWS = 200_000
_COLUMNS = ["id", "text", "url", "date", "source_file", "dup_cluster_id", "dup_cluster_size", "dup_is_representative",
            "synthetic_probability", "synthetic_signals", "synthetic_evidence", "flags", "decision", "reasons"]
_TEXT_CHARS = 20_000   # per document, for tail retention: enough words, bounded work
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
        why = ("the run failed its accounting" if FileSystems.exists(FileSystems.join(output, FAILED_MANIFEST))
               else "the driver stopped before its final check" if FileSystems.exists(
                   FileSystems.join(output, UNCHECKED_MANIFEST))
               else "the run has not finished, or this is not a firsthand run folder")
        raise ConfigError(f"cannot report on {output}: no {MANIFEST} ({why})")
    with FileSystems.open(path) as f:
        return json.load(f)


def _row_groups(output: str, files: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    units = []
    for listed in files:
        path = FileSystems.join(output, listed["path"])
        with FileSystems.open(path) as f:
            metadata = pq.ParquetFile(f).metadata
        units += [(path, i, metadata.row_group(i).num_rows) for i in range(metadata.num_row_groups)]
    return units


def _evenly(units: list[tuple[str, int, int]], budget: int) -> list[tuple[str, int, int]]:
    """Row groups spread evenly over the list, about `budget` rows in all (at least one group)."""
    total = sum(rows for _, _, rows in units)
    if total <= budget:
        return units
    step = total / budget
    chosen, next_at, seen = [], 0.0, 0
    for unit in units:
        if seen + unit[2] > next_at:
            chosen.append(unit)
            next_at += step * unit[2]
        seen += unit[2]
    return chosen


def load_sample(output: str, manifest: dict[str, Any], max_rows: int = DEFAULT_SAMPLE_ROWS) -> Sample:
    outputs = manifest["outputs"]
    tables = [t for t in DOCUMENT_TABLES if outputs.get(t)]
    documents = sum(f["rows"] for t in tables for f in outputs[t])
    pieces, exhaustive = [], True
    for table in tables:
        units = _row_groups(output, outputs[table])
        rows = sum(r for _, _, r in units)
        chosen = _evenly(units, max(1, round(max_rows * rows / max(documents, 1))))
        exhaustive &= len(chosen) == len(units)
        for path, group, _ in chosen:
            with FileSystems.open(path) as f:
                pieces.append(pq.ParquetFile(f).read_row_group(group, columns=_COLUMNS))
    rows = pa.concat_tables(pieces) if pieces else pa.table({c: pa.array([], pa.null()) for c in _COLUMNS})
    return Sample(rows, documents, exhaustive)


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


def _signal_drivers(signals: list[Any], probabilities: np.ndarray, reasons: list[list[str]],
                    kept: np.ndarray) -> list[tuple[str, float]]:
    """Each signal's mean among documents rejected as synthetic minus its mean among kept
    documents, in standard deviations of all scored documents: what set them apart."""
    rejected = np.array([REASON_SYNTHETIC in r for r in reasons])
    if not rejected.any() or not kept.any():
        return []
    names = sorted({s["name"] for row in signals if row for s in row})
    matrix = np.full((len(signals), len(names)), np.nan)
    index = {n: i for i, n in enumerate(names)}
    for r, row in enumerate(signals):
        for s in row or ():
            matrix[r, index[s["name"]]] = s["score"]
    out = []
    for j, name in enumerate(names):
        column = matrix[:, j]
        spread = np.nanstd(column)
        if not np.isfinite(spread) or spread == 0 or np.isnan(column[rejected]).all() or np.isnan(column[kept]).all():
            continue
        out.append((name, float((np.nanmean(column[rejected]) - np.nanmean(column[kept])) / spread)))
    return sorted(out, key=lambda item: -abs(item[1]))[:12]


def _examples(rows: list[dict[str, Any]], key: str, names: list[str], per_name: int = 3) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {n: [] for n in names}
    for row in rows:
        for name in row[key] or ():
            if name in out and len(out[name]) < per_name:
                out[name].append(row)
    return {n: v for n, v in out.items() if v}


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
    texts = t.column("text").to_pylist()
    tails = compare_tails((texts[i][:_TEXT_CHARS] for i in order),
                          (texts[i][:_TEXT_CHARS] for i in order if kept[i]))
    representatives = t.filter(t.column("dup_is_representative")) if n else t
    dedup = manifest["stages"]["dedup"]
    rows = t.select(["id", "text", "synthetic_probability", "synthetic_evidence", "reasons", "flags", "dup_cluster_id",
                     "dup_is_representative"]).to_pylist()
    return {
        "run": {k: manifest.get(k) for k in ("status", "schema_version", "firsthand_version", "started_at",
                                             "finished_at")} | {"mode": manifest["config"]["mode"],
                                                                "inputs": manifest["config"]["inputs"]},
        "counts": manifest["counts"],
        "sample": {"rows": n, "documents": sample.documents, "exhaustive": sample.exhaustive},
        "probability": {"threshold": threshold, "histogram": histogram(probability[scored], 20),
                        "scored": int(scored.sum()), "by_group": by_group},
        "drivers": _signal_drivers(t.column("synthetic_signals").to_pylist() if n else [], probability,
                                   t.column("reasons").to_pylist() if n else [], kept & scored),
        "reason_examples": _examples(rows, "reasons", sorted(manifest["counts"]["rejected_by_reason"])),
        "flag_examples": _examples(rows, "flags", sorted(manifest["counts"]["flags"]), per_name=2),
        "clusters": {"with_duplicates": dedup["clusters_with_duplicates"],
                     "largest": dedup.get("largest_clusters", []),
                     "sizes": size_histogram(representatives.column("dup_cluster_size").to_pylist())},
        "composition": {"source": _composition(sources, kept), "domain": _composition(domains, kept),
                        "year": sorted(_composition(years, kept))},
        "tails": _tails(tails),
        "share": detect.get("machine_written_share"),
        "held_out_rates": (detect.get("model") or {}).get("held_out_rates"),
    }


def _tails(pair: tuple[TailStats, TailStats] | None) -> dict[str, Any] | None:
    if pair is None:
        return None
    return {name: {"tokens": s.tokens, "vocabulary": s.vocabulary, "tail_mass": s.tail_mass,
                   "distinct": s.distinct, "zipf_slope": s.zipf_slope, "rank_frequency": s.rank_frequency}
            for name, s in zip(("input", "kept"), pair)}


def make_report(output: str, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> tuple[str, dict[str, Any]]:
    """The page for the run in `output`, and the figures on it."""
    manifest = read_manifest(output)
    figures = build_figures(manifest, load_sample(output, manifest, sample_rows))
    return render(figures, output, _CSP), figures


def write_report(output: str, sample_rows: int = DEFAULT_SAMPLE_ROWS, to: str | None = None) -> str:
    """Write the report (into the run folder by default) through Beam's FileSystems; return its path."""
    page, _ = make_report(output, sample_rows)
    if to is None:
        write_file(output, REPORT, page.encode("utf-8"))
        return FileSystems.join(output, REPORT)
    folder, name = FileSystems.split(to)
    write_file(folder, name, page.encode("utf-8"))
    return to
