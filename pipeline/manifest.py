"""manifest.json: the run's configuration, versions, inputs, counts and output files.

Built inside the pipeline from the per-file read reports and per-shard write
reports, so it needs no driver (templates, detached jobs) and counts only what
really reached the output. Written last: readers trust only files it lists.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from typing import Any, Iterable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from detectors.prevalence import Rates, adjusted_share
from pipeline.write import TEMP_DIR, rename_into_place
from schemas import (DOCUMENTS, ERRORS, FAILED_MANIFEST, FLAG_CHATBOT_RESIDUE, FLAG_DETECTOR_FAILED,
                     FLAG_DETECTOR_TOO_SHORT, FLAG_DETECTOR_UNSUPPORTED, KEPT, MANIFEST, REASON_CHATBOT_RESIDUE,
                     REASON_EXACT_DUPLICATE, REASON_NEAR_DUPLICATE, REASON_SYNTHETIC, REJECTED, SCHEMA_VERSION,
                     UNCHECKED_MANIFEST)

_log = logging.getLogger("firsthand.manifest")


class AccountingError(RuntimeError):
    """Records were lost or duplicated between reading and writing."""


def _add(total: Counter[str], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] += v


def _dedup_steps(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum the dedup stage's in-band reports: LSH candidates, verification, CC rounds."""
    steps: dict[str, Counter[str]] = {}
    for r in reports:
        _add(steps.setdefault(r["stage"], Counter()), r["counts"])
    rounds = sorted((k for k in steps if k.startswith("cc_round_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    finish = steps.get("cc_finish", Counter())
    return {
        "lsh": dict(steps.get("lsh", {})),
        "verification": dict(steps.get("verify", {})) or None,
        "connected_components": {
            "unsettled_nodes_by_round": [steps[k]["unsettled_nodes"] for k in rounds],
            "finished_on_one_worker_nodes": finish.get("finished_on_one_worker_nodes", 0),
            "converged_in_distributed_rounds": finish.get("finished_on_one_worker_nodes", 0) == 0,
        },
    }


def _detect_stage(run_info: dict[str, Any], outputs: list[dict[str, Any]], reasons: Counter[str],
                  flags: Counter[str]) -> dict[str, Any]:
    detect = run_info.get("config", {}).get("detect", {})
    documents = [r for r in outputs if r["table"] != ERRORS]
    scored = sum(r.get("synthetic_scored", 0) for r in documents)
    with_probability = sum(r.get("synthetic_with_probability", 0) for r in documents)
    total = sum(r.get("synthetic_probability_sum", 0.0) for r in documents)
    flagged = sum(r.get("synthetic_at_or_above_threshold", 0) for r in documents)
    return {"enabled": bool(detect.get("enabled")), "model": run_info.get("detector"),
            "threshold": detect.get("threshold"), "policy": detect.get("policy"),
            "scored": scored, "with_probability": with_probability,
            "mean_synthetic_probability": round(total / with_probability, 4) if with_probability else None,
            "rejected_synthetic": reasons.get(REASON_SYNTHETIC, 0),
            "rejected_chatbot_residue": reasons.get(REASON_CHATBOT_RESIDUE, 0),
            "chatbot_residue_flags": flags.get(FLAG_CHATBOT_RESIDUE, 0),
            "unsupported_language": flags.get(FLAG_DETECTOR_UNSUPPORTED, 0),
            "too_short": flags.get(FLAG_DETECTOR_TOO_SHORT, 0),
            "failed": flags.get(FLAG_DETECTOR_FAILED, 0),
            "at_or_above_threshold": flagged,
            "machine_written_share": _machine_written_share(run_info, flagged, with_probability)}


def _machine_written_share(run_info: dict[str, Any], flagged: int, documents: int) -> dict[str, Any] | None:
    """Adjusted classify-and-count from the stack's held-out rates (detectors/prevalence.py)."""
    held_out = (run_info.get("detector") or {}).get("held_out_rates")
    if not held_out:
        return None
    rates = Rates(held_out["threshold"], held_out["tpr"], held_out["fpr"], held_out["machine_texts"],
                  held_out["human_texts"])
    share = adjusted_share(flagged, documents, rates)
    if share is None:
        return None
    return {"estimate": round(share.estimate, 4), "ci95": [round(share.low, 4), round(share.high, 4)],
            "flagged_share": round(share.flagged_share, 4), "documents": share.documents,
            "method": "adjusted classify-and-count with the stack's held-out TPR and FPR at the threshold"}


def build_manifest(reports: Iterable[dict[str, Any]], run_info: dict[str, Any]) -> dict[str, Any]:
    """Assemble the manifest and its accounting block from the pipeline's reports."""
    reports = list(reports)
    inputs = sorted((r for r in reports if r["report"] == "input"), key=lambda r: r["path"])
    outputs = sorted((r for r in reports if r["report"] == "output"), key=lambda r: r["path"])
    by_table: dict[str, list[dict[str, Any]]] = {t: [] for t in (KEPT, REJECTED, DOCUMENTS, ERRORS)}
    for r in outputs:
        by_table[r["table"]].append(r)

    def rows(table: str) -> int:
        return sum(r["rows"] for r in by_table[table])

    read_errors_by_kind: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    error_kinds: Counter[str] = Counter()
    for r in inputs:
        _add(read_errors_by_kind, r["errors_by_kind"])
        _add(skipped, r["skipped"])
    for r in by_table[KEPT] + by_table[REJECTED] + by_table[DOCUMENTS]:
        _add(reasons, r["reasons"])
        _add(flags, r["flags"])
        _add(decisions, r["decisions"])
    for r in by_table[ERRORS]:
        _add(error_kinds, r["kinds"])

    documents_read = sum(r["documents"] for r in inputs)
    errors_read = sum(r["errors"] for r in inputs)
    read = documents_read + errors_read
    written_documents = rows(KEPT) + rows(REJECTED) + rows(DOCUMENTS)
    written = written_documents + rows(ERRORS)
    counts = {
        "read": read,
        "kept": decisions.get("keep", 0),
        "rejected": decisions.get("reject", 0),
        "errors": rows(ERRORS),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "errors_by_kind": dict(sorted(error_kinds.items())),
        "flags": dict(sorted(flags.items())),
    }
    stages = {
        "read": {"files": len(inputs), "documents": documents_read, "errors": errors_read,
                 "errors_by_kind": dict(sorted(read_errors_by_kind.items())),
                 "skipped_non_documents": dict(sorted(skipped.items()))},
        "dedup": {"near_duplicates_enabled": run_info.get("config", {}).get("dedup", {}).get("near", True),
                  "documents": written_documents,
                  "clusters_with_duplicates": sum(r["duplicate_clusters"] for r in outputs if r["table"] != ERRORS),
                  "exact_duplicates": reasons.get(REASON_EXACT_DUPLICATE, 0),
                  "near_duplicates": reasons.get(REASON_NEAR_DUPLICATE, 0),
                  "id_collisions_resolved": flags.get("id_collision", 0),
                  "largest_clusters": sorted((c for r in outputs for c in r.get("largest_clusters", [])),
                                             key=lambda c: (-c["size"], c["cluster_id"]))[:5],
                  **_dedup_steps(r for r in reports if r["report"] == "dedup")},
        "detect": _detect_stage(run_info, outputs, reasons, flags),
        "write": {t: {"files": len(by_table[t]), "rows": rows(t)} for t in by_table},
    }
    accounting = {
        "rule": "read = kept + rejected + errors",
        "read": read,
        "kept_plus_rejected_plus_errors": counts["kept"] + counts["rejected"] + counts["errors"],
        "documents_read": documents_read,
        "document_rows_written": written_documents,
        "errors_read": errors_read,
        "error_rows_written": rows(ERRORS),
        "written_rows": written,
    }
    tables = (DOCUMENTS, ERRORS) if run_info.get("config", {}).get("mode") == "tag" else (KEPT, REJECTED, ERRORS)
    accounting["balanced"] = (accounting["read"] == accounting["kept_plus_rejected_plus_errors"] == written
                              and documents_read == written_documents and errors_read == rows(ERRORS)
                              and error_kinds == read_errors_by_kind)
    return {
        **run_info,
        "status": "complete" if accounting["balanced"] else "accounting_failed",
        "schema_version": SCHEMA_VERSION,
        "inputs": [{k: r[k] for k in ("path", "format", "size_bytes", "documents", "errors",
                                       "errors_by_kind", "skipped")} for r in inputs],
        "counts": counts,
        "stages": stages,
        "accounting": accounting,
        "outputs": {t: [{"path": r["path"], "rows": r["rows"], "bytes": r["bytes"]} for r in by_table[t]]
                    for t in tables},
    }


def temp_name(name: str) -> str:
    """The temporary file write_json writes beside `name` before renaming it."""
    return f".{name}.tmp"


def write_file(output: str, name: str, data: bytes) -> None:
    """Write output/name atomically (temporary file beside it, then rename)."""
    temp = FileSystems.join(output, temp_name(name))
    with FileSystems.create(temp) as f:
        f.write(data)
    rename_into_place(temp, FileSystems.join(output, name))


def write_json(output: str, name: str, data: dict[str, Any]) -> None:
    write_file(output, name, json.dumps(data, indent=2, sort_keys=False, default=str).encode("utf-8"))


class WriteManifestFn(beam.DoFn):
    def __init__(self, output: str, run_info: dict[str, Any], name: str):
        self._output = output
        self._run_info = run_info
        self._name = name

    def process(self, reports: list[dict[str, Any]]):
        manifest = build_manifest(reports, self._run_info)
        manifest["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        if not manifest["accounting"]["balanced"]:
            write_json(self._output, FAILED_MANIFEST, manifest)
            raise AccountingError(
                "records were lost or duplicated between reading and writing: "
                f"{json.dumps(manifest['accounting'])}. The output is incomplete and has no manifest.json; "
                f"details are in {FileSystems.join(self._output, FAILED_MANIFEST)}. Please report this.")
        write_json(self._output, self._name, manifest)
        temp = FileSystems.join(self._output, TEMP_DIR)
        if FileSystems.exists(temp):  # absent when the run wrote no shard at all
            FileSystems.delete([temp])
        _log.info("wrote %s", FileSystems.join(self._output, self._name))
        yield manifest["counts"]


class WriteManifest(beam.PTransform):
    """All reports -> the manifest, once every shard is written.

    It is written as manifest.unchecked.json when the driver will compare it with Beam's
    metrics and then rename it (see pipeline.run.promote_manifest); as manifest.json when no
    driver waits for the job (--detach)."""

    def __init__(self, output: str, run_info: dict[str, Any], checked_by_driver: bool = True):
        super().__init__()
        self._output, self._run_info = output, run_info
        self._name = UNCHECKED_MANIFEST if checked_by_driver else MANIFEST

    def expand(self, reports):
        return (reports
                | "Collect" >> beam.combiners.ToList()
                | "Write" >> beam.ParDo(WriteManifestFn(self._output, self._run_info, self._name)))
