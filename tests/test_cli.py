"""The installed command, as a user runs it."""
import json
import os
import re
import subprocess
import sys

import pyarrow.dataset as ds
import pytest

from pipeline.demo import demo_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "demo")


def firsthand(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_demo_run_end_to_end_and_output_opens_with_pyarrow(tmp_path):
    out = tmp_path / "demo-run"
    result = firsthand("run", "--input", "examples/demo/*", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "read 52 records from 8 file(s)" in result.stdout and "(balanced)" in result.stdout
    assert "firsthand.read: reading" in result.stderr  # progress is logged
    assert "    3 documents, kept c4-03.parquet:1: Our hiking group" in result.stdout  # the largest cluster
    assert "documents/s" in result.stdout
    # the share's figures follow the shipped stack and its language gate (most demo texts are too short to judge)
    assert re.search(r"estimated machine-written share: \d+\.\d% \(95% CI \d+\.\d%-\d+\.\d%", result.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    kept_files = [str(out / f["path"]) for f in manifest["outputs"]["kept"]]
    table = ds.dataset(kept_files, format="parquet").to_table(filter=ds.field("dup_is_representative"))
    assert table.num_rows == manifest["counts"]["kept"] > 0


def test_config_file_and_command_line_together(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("input: [examples/demo/c4-03.parquet]\nmode: tag\nnum_shards: 2\n")
    result = firsthand("run", "--config", str(config), "--output", str(tmp_path / "o"), "--workers", "1")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["config"]["mode"] == "tag" and manifest["config"]["num_shards"] == 2
    assert manifest["config"]["dedup"]["sets_route"] == "buckets"  # the local runner's route (dedup_for_runner)
    assert manifest["counts"]["read"] == 4


def test_command_line_input_replaces_the_config_files_input(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("input: [examples/demo/c4-03.parquet]\n")
    result = firsthand("run", "--config", str(config), "--input", "examples/demo/news-00.jsonl",
                       "--output", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [os.path.basename(f["path"]) for f in manifest["inputs"]] == ["news-00.jsonl"]


def test_no_import_noise_on_any_command():
    for args in (["--help"], ["schema"]):
        result = firsthand(*args)
        assert "apitools" not in result.stderr + result.stdout


def test_errors_are_one_clear_line_and_exit_code_2(tmp_path):
    cases = [
        (["run", "--input", str(tmp_path / "none*.jsonl"), "--output", str(tmp_path / "o")], "matched no file"),
        (["run", "--input", "examples/demo/*", "--output", str(tmp_path / "o"), "--bogus"], "unknown option"),
        (["run", "--input", "examples/demo/*"], "no output"),
        (["frobnicate"], "unknown command"),
    ]
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("colour: blue\n")
    cases.append((["run", "--config", str(bad_config), "--output", str(tmp_path / "o")], "unknown option 'colour'"))
    for args, message in cases:
        result = firsthand(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_schema_and_help_commands():
    schema = firsthand("schema")
    assert schema.returncode == 0 and "`dup_cluster_id`" in schema.stdout and "`raw_excerpt`" in schema.stdout
    help_text = firsthand("run", "--help")
    assert help_text.returncode == 0 and "--text-field" in help_text.stdout and "Beam" in help_text.stdout


def test_committed_demo_corpus_matches_its_generator(tmp_path):
    assert sorted(os.listdir(DEMO)) == sorted(demo_files())
    for name, data in demo_files().items():
        with open(os.path.join(DEMO, name), "rb") as f:
            assert f.read() == data, f"examples/demo/{name} is stale: run `firsthand demo --output examples/demo`"
    result = firsthand("demo", "--output", str(tmp_path / "d"))
    assert result.returncode == 0 and len(os.listdir(tmp_path / "d")) == len(demo_files())


def test_detach_submits_and_returns_without_the_summary(tmp_path):
    """What the Dataflow Flex Template's launcher runs; FnApiRunner finishes before run() returns,
    so the job's own manifest is there, but the driver prints no summary and skips its cross-check."""
    out = tmp_path / "detached"
    result = firsthand("run", "--input", "examples/demo/news-00.jsonl", "--output", str(out), "--detach",
                       "--detectors", "off")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("submitted;") and "kept" not in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "beam_metrics" not in manifest
    assert manifest["driver_metrics_check"].startswith("skipped: --detach")
    assert sorted(p.name for p in out.iterdir()) == ["errors", "kept", "manifest.json"]   # no unchecked one, no report


def test_no_report_leaves_the_report_out(tmp_path):
    out = tmp_path / "run"
    result = firsthand("run", "--input", "examples/demo/news-00.jsonl", "--output", str(out), "--no-report",
                       "--detectors", "off")
    assert result.returncode == 0, result.stderr
    assert (out / "manifest.json").exists() and not (out / "report.html").exists()


def test_detach_with_loopback_workers_is_refused(tmp_path):
    result = firsthand("run", "--input", "examples/demo/news-00.jsonl", "--output", str(tmp_path / "o"), "--detach",
                       "--runner", "PortableRunner", "--job_endpoint", "localhost:1", "--environment_type", "LOOPBACK")
    assert result.returncode == 2 and "LOOPBACK would end the job with this process" in result.stderr


@pytest.mark.parametrize("paths, local", [
    (["--input", "examples/demo/news-00.jsonl", "--output", "gs://b/out"], "examples/demo/news-00.jsonl"),
    (["--input", "gs://b/in/*", "--output", "runs/x"], "runs/x"),
    (["--input", "gs://b/in/*", "--output", "gs://b/out", "--detector-model", "models/stack"], "models/stack"),
])
def test_local_paths_are_refused_for_dataflow_workers(paths, local):
    result = firsthand("run", *paths, "--runner", "DataflowRunner")
    assert result.returncode == 2
    assert f"use gs:// paths instead of {local}" in result.stderr
