"""Build and run a firsthand pipeline: match inputs, guard the output folder, wire the
composites, then check the manifest against Beam's metrics and print a summary."""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import glob
import json
import logging
import math
import os
import platform
import time
from importlib import metadata
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, PortableOptions, StandardOptions

from pipeline.dedup import Duplicates
from pipeline.detect import ScoreDocuments, held_out_rates, load_configured_stack
from pipeline.documents import SourceFile
from pipeline.formats import detect_format
from pipeline.lsh import SETS_VIA_BUCKETS, SETS_VIA_FLATTEN, DedupConfig
from pipeline.manifest import AccountingError, WriteManifest, temp_name, write_json
from pipeline.options import ConfigError, RunConfig, config_from_options
from pipeline.read import ERRORS, NAMESPACE, REPORTS, ReadDocuments
from pipeline.write import TEMP_DIR, WriteDocuments, WriteErrors
from schemas import (DOCUMENTS, ERRORS as ERRORS_TABLE, FAILED_MANIFEST, KEPT, MANIFEST, REJECTED, REPORT,
                     UNCHECKED_MANIFEST)

DEFAULT_RUNNER = "FnApiRunner"  # DirectRunner would first try to download Prism
_RUN_ENTRIES = {KEPT, REJECTED, DOCUMENTS, ERRORS_TABLE, TEMP_DIR,
                *(n for name in (MANIFEST, FAILED_MANIFEST, UNCHECKED_MANIFEST, REPORT) for n in (name, temp_name(name)))}
_GLOB_CHARS = "*?[{"
_log = logging.getLogger("firsthand")


def _is_local(path: str) -> bool:
    return "://" not in path


def _absolute(path: str) -> str:
    return os.path.abspath(path) if _is_local(path) else path


def pattern_base(pattern: str) -> str:
    """The folder part of a glob before its first wildcard, ending in '/'."""
    cut = min((pattern.find(c) for c in _GLOB_CHARS if c in pattern), default=len(pattern))
    return pattern[: pattern.rfind("/", 0, cut) + 1]


def expand_inputs(patterns: tuple[str, ...], forced_format: str) -> list[SourceFile]:
    """Every file the patterns match, sorted by path; ConfigError when a pattern matches none."""
    sources: dict[str, SourceFile] = {}
    for pattern in patterns:
        absolute = _absolute(pattern)
        try:
            matched = FileSystems.match([absolute])[0].metadata_list
        except Exception as e:  # noqa: BLE001 - Beam raises BeamIOError and others per filesystem
            raise ConfigError(f"cannot list --input {pattern}: {e}") from None
        files = [(m.path, m.size_in_bytes) for m in matched if not (_is_local(m.path) and os.path.isdir(m.path))]
        if _is_local(absolute):  # Beam's listing drops what it cannot stat (a broken link): keep it, to fail as an error row
            files += [(path, 0) for path in sorted(glob.glob(absolute, recursive=True)) if not os.path.exists(path)]
        if not files:
            raise ConfigError(f"--input {pattern} matched no file; check the path and quote the glob "
                              "so the shell does not expand it")
        base = pattern_base(absolute)
        for path, size in files:
            fmt = forced_format if forced_format != "auto" else detect_format(path)
            relative = path[len(base):] if path.startswith(base) else path.rsplit("/", 1)[-1]
            sources.setdefault(path, SourceFile(path, relative, fmt, size))
    return [sources[p] for p in sorted(sources)]


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse a non-empty folder unless --overwrite, and then replace only an earlier run's entries."""
    try:
        FileSystems.get_filesystem(output)
        FileSystems.exists(output)
    except Exception as e:  # noqa: BLE001 - e.g. s3:// without apache-beam[aws]
        raise ConfigError(f"cannot use --output {output}: {e}; for gs:// or s3:// install "
                          "apache-beam[gcp] or apache-beam[aws]") from None
    try:  # `**`: a local `*` lists files only, and would miss shard folders
        existing = [m.path for m in FileSystems.match([FileSystems.join(output, "**")])[0].metadata_list]
    except Exception:  # noqa: BLE001 - a folder that does not exist yet matches nothing
        existing = []
    names = {p[len(output):].lstrip("/").split("/", 1)[0] for p in existing}
    if not names:
        return
    if not overwrite:
        raise ConfigError(f"output folder {output} is not empty ({', '.join(sorted(names)[:5])}); "
                          "choose a new --output, or pass --overwrite to replace an earlier firsthand run there")
    foreign = names - _RUN_ENTRIES
    if foreign:
        raise ConfigError(f"--overwrite refused: {output} holds files that are not from a firsthand run "
                          f"({', '.join(sorted(foreign)[:5])}); choose another --output")
    # Local folders go whole; object stores have no folders, only the objects listed.
    FileSystems.delete([FileSystems.join(output, n) for n in sorted(names)] if _is_local(output) else existing)


def auto_num_shards(sources: list[SourceFile], shard_input_mb: int) -> int:
    total = sum(s.size_bytes for s in sources)
    return max(1, math.ceil(total / (shard_input_mb * 1024 * 1024)))


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("firsthand", "apache-beam", "datasketch", "numpy", "pyarrow", "zstandard", "warcio", "resiliparse"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def build_pipeline(p: beam.Pipeline, config: RunConfig, sources: list[SourceFile], num_shards: int,
                   run_info: dict[str, Any], checked_by_driver: bool = True) -> None:
    """read -> dedup (exact and near) -> join at write; errors to their own shards; manifest last."""
    read = p | "Read" >> ReadDocuments(sources, config.mapping, config.max_record_bytes, config.html_main_content)
    documents = read.documents
    if config.detect.enabled:
        documents = documents | "Detect" >> ScoreDocuments(config.detect)
    dedup, dedup_reports = documents | "Dedup" >> Duplicates(config.dedup)
    document_reports = ((documents, dedup)
                        | "WriteDocuments" >> WriteDocuments(config.output, num_shards, config.mode, config.detect))
    error_reports = read[ERRORS] | "WriteErrors" >> WriteErrors(config.output, num_shards)
    ((read[REPORTS], dedup_reports, document_reports, error_reports)
     | "AllReports" >> beam.Flatten()
     | "Manifest" >> WriteManifest(config.output, run_info, checked_by_driver))


def _check_detector(config: RunConfig) -> tuple[RunConfig, dict[str, Any] | None]:
    """Load the detector stack once before the run, so a bad model folder fails up front; the
    run's config gets the stack's default threshold unless the user gave one, and the stack's
    digest, which every worker must load."""
    if not config.detect.enabled:
        return config, None
    from detectors.stack import ModelFileError
    try:
        stack = load_configured_stack(config.detect)
    except ModelFileError as error:
        raise ConfigError(f"--detector-model: {error}") from None
    given = config.detect.threshold is not None
    detect = dataclasses.replace(config.detect, expected_sha256=stack.digest,
                                 threshold=config.detect.threshold if given else stack.threshold["value"])
    threshold = {"value": detect.threshold, "source": "--synthetic-threshold" if given else "model",
                 "model_default": stack.threshold}
    return dataclasses.replace(config, detect=detect), {
        "version": stack.version, "stack_sha256": stack.digest, "versions": stack.versions,
        "date_prior_odds": stack.date_prior_odds, "trained_on": stack.about.get("datasets"),
        "threshold": threshold, "held_out_rates": held_out_rates(detect, stack.digest)}


def is_local_runner(runner: str) -> bool:
    """FnApiRunner, or a DirectRunner (which runs it), by name or class path: the shuffle
    lives in this process."""
    name = runner.rsplit(".", 1)[-1].lower()
    return name in ("fnapi", "fnapirunner") or "direct" in name


def dedup_for_runner(dedup: DedupConfig, runner: str) -> DedupConfig:
    """FnApiRunner copies a Flatten of two stages' outputs through a stage of its own, so
    locally the shingle sets ride the bucket shuffle; cluster runners fuse Flattens, so
    there the sets skip that shuffle (~1 KB per document less)."""
    return dataclasses.replace(dedup, sets_route=SETS_VIA_BUCKETS if is_local_runner(runner) else SETS_VIA_FLATTEN)


def beam_options(beam_args: list[str], workers: int | None) -> PipelineOptions:
    """Beam's options with firsthand's local defaults: FnApiRunner, and --workers as processes."""
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = DEFAULT_RUNNER
    if workers is not None and not is_local_runner(standard.runner):
        raise ConfigError(f"--workers sets local processes of FnApiRunner; with --runner {standard.runner} "
                          "use that runner's own options (e.g. --num_workers on Dataflow)")
    if workers is not None:
        direct = options.view_as(DirectOptions)
        direct.direct_num_workers = workers
        direct.direct_running_mode = "multi_processing" if workers > 1 else "in_memory"
        if workers > 1:
            _log.warning("--workers %d runs FnApiRunner's multi_processing mode, which in Beam 2.77 lost a "
                         "stage's data now and then from about 200,000 documents up; firsthand removed that stage, "
                         "but Flattens like it remain (README, near-duplicate detection, 'Two worker processes'). "
                         "firsthand's checks stop such a run before it writes a manifest. For large inputs use one "
                         "worker (the default) or a cluster runner.", workers)
    return options


def unknown_beam_args(argv: list[str]) -> list[str]:
    """Arguments that neither firsthand nor any Beam options class defines."""
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    seen: set[type] = set()
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # two option classes may define the same flag; one definition is enough here
    _, unknown = parser.parse_known_args(argv)
    return unknown


def _counter_values(result: beam.runners.runner.PipelineResult) -> dict[str, int] | None:
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except Exception:  # noqa: BLE001 - some runners do not report metrics
        return None
    values: dict[str, int] = {}
    for c in counters:
        value = c.committed if c.committed is not None else c.attempted
        values[c.key.metric.name] = values.get(c.key.metric.name, 0) + (value or 0)
    return values


def check_metrics(manifest: dict[str, Any], counters: dict[str, int]) -> None:
    """Beam's counters (sent on the runner's control channel) and the manifest's in-band counts
    (which travel with the data) must agree; so must counters on the two sides of a shuffle."""
    counts = manifest["counts"]
    pairs = {
        "read": counters.get("read.documents", 0) + counters.get("read.errors", 0),
        "errors": counters.get("write.errors", 0),
        "documents": counters.get("write.kept", 0) + counters.get("write.rejected", 0)
        + counters.get("write.documents", 0),
    }
    expected = {"read": counts["read"], "errors": counts["errors"],
                "documents": counts["kept"] + counts["rejected"]}
    detect = manifest["stages"].get("detect", {})
    if detect.get("enabled"):
        pairs["scored"], expected["scored"] = counters.get("detect.scored", 0), detect["scored"]
    # Inside the dedup stage, records counted where they are made must all arrive where they
    # are grouped: a runner that loses a data message between stages must fail the run, not
    # silently miss clusters (seen once in a while with Beam 2.77's FnApiRunner on 2 processes).
    dedup = manifest["stages"].get("dedup") or {}
    if "dedup.band_records" in counters:
        pairs["band_records"] = counters["dedup.band_records"]
        expected["band_records"] = (dedup.get("lsh") or {}).get("band_records", 0)
    if dedup.get("verification") is not None:
        pairs["edge_halves"] = 2 * counters.get("dedup.candidate_edges", 0)
        expected["edge_halves"] = dedup["verification"].get("edge_halves", 0)
        pairs["distinct_edge_halves"] = counters.get("dedup.distinct_edge_halves", 0)
        expected["distinct_edge_halves"] = dedup["verification"].get("distinct_edge_halves", 0)
    if "dedup.labelled_nodes" in counters:  # both ends are counters: made by Settle, joined to documents
        pairs["labels"] = counters["dedup.labelled_nodes"]
        expected["labels"] = counters.get("dedup.labels_joined", 0)
    if pairs != expected:
        lost = {k: pairs[k] - expected[k] for k in pairs if pairs[k] != expected[k]}
        raise AccountingError(
            f"Beam metrics {pairs} disagree with the manifest {expected} (difference {lost}): records were "
            "lost or duplicated between stages, so the output is not trustworthy and was not marked complete. "
            "Rerun the job; if it recurs, report it with both manifests.")


def promote_manifest(output: str, counters: dict[str, int] | None) -> dict[str, Any]:
    """Check the pipeline's unchecked manifest against Beam's metrics, then make it manifest.json.

    manifest.json is the one file readers trust, so it appears only after this check: a driver
    killed before it leaves an unchecked manifest that no reader accepts."""
    unchecked = FileSystems.join(output, UNCHECKED_MANIFEST)
    with FileSystems.open(unchecked) as f:
        manifest = json.load(f)
    if counters:
        try:
            check_metrics(manifest, counters)
        except AccountingError:
            write_json(output, FAILED_MANIFEST, {**manifest, "status": "metrics_mismatch", "beam_metrics": counters})
            FileSystems.delete([unchecked])
            raise
        manifest["beam_metrics"] = dict(sorted(counters.items()))
    else:
        _log.info("runner reported no metrics; the manifest's in-band counts stand alone")
        manifest["driver_metrics_check"] = "skipped: the runner reported no metrics"
    write_json(output, MANIFEST, manifest)  # atomic, and the last file of the run's data
    FileSystems.delete([unchecked])
    return manifest


def _refuse_local_paths_on_cloud_workers(config: RunConfig, runner: str | None) -> None:
    """Dataflow workers cannot see the launching machine's disk: a local path would fail
    there after minutes of start-up, or write the output where no one looks."""
    if "dataflow" not in (runner or "").lower():
        return
    local = [p for p in (*config.inputs, config.output, config.detect.model) if p and _is_local(p)]
    if local:
        raise ConfigError(f"--runner {runner} runs on cloud workers, which cannot read or write this machine's "
                          f"files: use gs:// paths instead of {', '.join(local)}")


def run(argv: list[str], workers: int | None = None, wait: bool = True,
        report: bool = True) -> dict[str, Any] | None:
    """Run the pipeline described by argv (firsthand and Beam options); return the manifest.

    wait=False submits the job and returns None at once (Dataflow Flex Templates must not
    block on the job): the pipeline still writes manifest.json last, but the driver's
    cross-check of Beam's metrics against it is skipped."""
    unknown = unknown_beam_args(argv)
    flags = [a for a in unknown if a.startswith("-")]
    if flags:
        raise ConfigError(f"unknown option(s): {' '.join(flags)}; see `firsthand run --help`")
    if unknown:
        raise ConfigError(f"unexpected argument(s): {' '.join(unknown[:3])}; if these are input files, the shell "
                          "expanded an unquoted glob: quote it, e.g. --input 'data/*.jsonl.gz'")
    options = beam_options(argv, workers)
    config = config_from_options(options)
    runner = options.view_as(StandardOptions).runner
    config = dataclasses.replace(config, dedup=dedup_for_runner(config.dedup, runner))
    _refuse_local_paths_on_cloud_workers(config, runner)
    if not wait and (options.view_as(PortableOptions).environment_type or "").upper() == "LOOPBACK":
        raise ConfigError("--detach with --environment_type LOOPBACK would end the job with this process: "
                          "drop --detach, or use EXTERNAL or DOCKER workers")
    config = RunConfig(**{**config.__dict__, "output": _absolute(config.output)})
    started = time.monotonic()
    sources = expand_inputs(config.inputs, config.format)
    prepare_output(config.output, config.overwrite)
    num_shards = config.num_shards or auto_num_shards(sources, config.shard_input_mb)
    if not config.dedup.partitions:
        config = dataclasses.replace(config, dedup=dataclasses.replace(config.dedup, partitions=max(8, 2 * num_shards)))
    config, detector = _check_detector(config)
    run_info = {
        "firsthand_version": _versions()["firsthand"],
        "detector": detector,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": {**config.to_dict(), "num_shards": num_shards},
        "beam_options": options.get_all_options(drop_default=True),
        "versions": _versions(),
    }
    if not wait:  # say so in the manifest: nobody compares Beam's counters with it afterwards
        run_info["driver_metrics_check"] = "skipped: --detach (compare the job's counters with this manifest)"
    total_mb = sum(s.size_bytes for s in sources) / 1e6
    _log.info("firsthand run: %d input file(s) (%.1f MB) -> %s, mode %s, %d shard(s), runner %s",
              len(sources), total_mb, config.output, config.mode, num_shards, runner)
    p = beam.Pipeline(options=options)
    build_pipeline(p, config, sources, num_shards, run_info, checked_by_driver=wait)
    result = p.run()
    if not wait:
        _log.info("submitted; the job writes %s when it has finished and its counts balance",
                  FileSystems.join(config.output, MANIFEST))
        return None
    state = result.wait_until_finish()
    if state not in ("DONE", beam.runners.runner.PipelineState.DONE):
        raise RuntimeError(f"pipeline ended in state {state}; see the log above for the cause")
    manifest = promote_manifest(config.output, _counter_values(result))
    manifest["_wall_seconds"] = time.monotonic() - started
    if report:
        _write_report(config.output)
    return manifest


def _write_report(output: str) -> None:
    """The HTML report is a view of the finished run: if it fails, the run's data still stands."""
    from pipeline.report import write_report
    try:
        _log.info("wrote %s", write_report(output))
    except Exception as e:  # noqa: BLE001 - never fail a finished, checked run over its report
        _log.warning("could not write %s (%s: %s); the run itself is complete. Retry with `firsthand report %s`",
                     REPORT, type(e).__name__, e, output)


def _detect_summary(detect: dict[str, Any]) -> list[str]:
    if not detect.get("enabled"):
        return ["  synthetic-text detectors: off"]
    mean = detect["mean_synthetic_probability"]
    return [f"  machine-written: mean probability {mean:.1%} over {detect['with_probability']:,} of "
            f"{detect['scored']:,} scored documents"
            if mean is not None else "  machine-written: no document scored",
            (f"  {detect['rejected_synthetic']:,} rejected at or above {detect['threshold']}, "
             if detect["policy"] == "reject" else "  weighted by 1 - probability (weight policy), ")
            + f"{detect['chatbot_residue_flags']:,} with chatbot residue, "
            f"{detect['unsupported_language']:,} in a language the detectors do not judge, "
            f"{detect.get('too_short', 0):,} too short to judge"
            + (f", {detect['failed']:,} failed (see the log)" if detect.get("failed") else ""),
            *_threshold_summary(detect), *_share_summary(detect)]


def _threshold_summary(detect: dict[str, Any]) -> list[str]:
    """Where the threshold came from and what the probability assumes."""
    threshold = (detect.get("model") or {}).get("threshold") or {}
    default = threshold.get("model_default") or {}
    if threshold.get("source") == "model" and default.get("chosen_on"):
        where = (f"the model's default, chosen so that at most {default['max_fpr']:.0%} of "
                 f"{default['human_texts']:,} held-out human texts are rejected ({default['fpr']:.1%} are)")
    elif threshold.get("source") == "model":
        where = "the model's fixed default"
    else:
        where = "set by --synthetic-threshold"
    return [f"  threshold {detect['threshold']}: {where}; probabilities assume even odds of machine text, "
            f"times the date prior's odds for documents dated before 30 Nov 2022"]


def _share_summary(detect: dict[str, Any]) -> list[str]:
    share, rates = detect.get("machine_written_share"), ((detect.get("model") or {}).get("held_out_rates"))
    if not share:
        return []
    low, high = share["ci95"]
    return [f"  estimated machine-written share: {share['estimate']:.1%} (95% CI {low:.1%}-{high:.1%}; "
            f"{share['flagged_share']:.1%} at or above {rates['threshold']}, corrected for the detector's held-out "
            f"TPR {rates['tpr']:.1%} and FPR {rates['fpr']:.1%})"]


def summary(manifest: dict[str, Any], output: str) -> str:
    """A few lines for the terminal: what the run did."""
    c = manifest["counts"]
    seconds = manifest.get("_wall_seconds", 0.0)

    def detail(d: dict[str, int]) -> str:
        return f" ({', '.join(f'{k} {v:,}' for k, v in d.items())})" if d else ""

    lines = [
        f"read {c['read']:,} records from {manifest['stages']['read']['files']} file(s)",
        f"  kept     {c['kept']:,}",
        f"  rejected {c['rejected']:,}{detail(c['rejected_by_reason'])}",
        f"  errors   {c['errors']:,}{detail(c['errors_by_kind'])}",
        f"  duplicate clusters: {manifest['stages']['dedup']['clusters_with_duplicates']:,}",
        *(f"    {c['size']:,} documents, kept {c['cluster_id']}: {c['excerpt'][:60]}"
          for c in manifest["stages"]["dedup"].get("largest_clusters", [])[:3]),
        *_detect_summary(manifest["stages"].get("detect", {})),
        f"accounting: read {c['read']:,} = kept + rejected + errors "
        f"({'balanced' if manifest['accounting']['balanced'] else 'NOT balanced'})",
        f"output: {output} (manifest.json lists every file)",
    ]
    if seconds:
        lines.append(f"wall time {seconds:.1f}s, {c['read'] / seconds:,.0f} records/s, "
                     f"{manifest['stages']['dedup']['documents'] / seconds:,.0f} documents/s")
    return "\n".join(lines)
