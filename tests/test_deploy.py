"""deploy/: the Dataflow image and template, the Flink manifests and the scripts, checked
offline with real linters, and against the pipeline's own options and versions."""
import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from pipeline.options import FirsthandOptions

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
BEAM_VERSION = metadata.version("apache-beam")
FLINK_VERSIONS_BEAM_SUPPORTS = ("1.19", "1.20", "2.0", "2.1", "2.2")  # Beam 2.77's Flink runner
K8S_VERSION = "1.30"


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed in this environment: pip install '.[test]'"
    return str(path)


def _options() -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    FirsthandOptions._add_argparse_args(parser)
    return {a.dest: a for a in parser._actions}


# -- Dataflow Flex Template ------------------------------------------------------------------

def test_template_metadata_is_generated_from_the_pipeline_options():
    make = _module(DEPLOY / "dataflow" / "make_metadata.py")
    committed = json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())
    assert committed == make.metadata(), "regenerate: python deploy/dataflow/make_metadata.py > deploy/dataflow/metadata.json"
    names = [p["name"] for p in committed["parameters"]]
    assert sorted(names) == sorted(_options())           # every option, nothing else
    assert all(p["regexes"] for p in committed["parameters"])
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)   # template parameter names
    required = {p["name"] for p in committed["parameters"] if not p["isOptional"]}
    assert required == {"input", "output"}


def _template_parameters() -> dict[str, dict]:
    return {p["name"]: p for p in json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())["parameters"]}


def _accepts(parameter: dict, value: str) -> bool:
    return all(re.fullmatch(r, value) for r in parameter["regexes"])


def test_every_template_parameter_is_validated():
    options = _options()
    for name, p in _template_parameters().items():
        action = options[name]
        assert p["regexes"] and p["helpText"], name
        assert not _accepts(p, "") and not _accepts(p, "not valid!"), name
        if isinstance(action, argparse._StoreTrueAction):
            assert _accepts(p, "true") and _accepts(p, "false") and not _accepts(p, "yes"), name
        elif action.choices:
            assert all(_accepts(p, str(c)) for c in action.choices), name
        elif action.default is not None:   # the default itself is a valid value
            assert _accepts(p, str(action.default)), name


@pytest.mark.parametrize("name, good, bad", [
    ("input", ["gs://b/in/*.jsonl.zst", "gs://b/a/*;s3://c/b/*"], ["/home/me/data.jsonl", "gs://b/a;/local"]),
    ("output", ["gs://b/runs/x"], ["runs/x", "gs://b/runs/x y"]),
    ("num_shards", ["0", "400"], ["-1", "1.5", "ten"]),
    ("shard_input_mb", ["64"], ["0", "-3"]),             # 0 would divide by zero
    ("detector_batch", ["256"], ["0"]),
    ("cc_rounds", ["0", "8"], ["-1"]),
    ("synthetic_threshold", ["0.9", ".5", "0.9999"], ["0", "1", "1.5", "e5", "."]),
    ("dedup_threshold", ["0.8"], ["1", "0.0"]),
    ("date_prior_odds", ["0.05", "1", "1.0"], ["0", "1.5", "2"]),
    ("text_field", ["text", "metadata.text,raw_content", "a-b_c"], ["a b", "a,,b", "a."]),
])
def test_template_regexes_follow_the_pipelines_own_checks(name, good, bad):
    p = _template_parameters()[name]
    assert all(_accepts(p, v) for v in good), [v for v in good if not _accepts(p, v)]
    assert not any(_accepts(p, v) for v in bad), [v for v in bad if _accepts(p, v)]


def test_template_arguments_become_firsthand_run_arguments():
    launch = _module(DEPLOY / "dataflow" / "launch.py")
    args = launch.template_args(["--input=gs://b/in/*;gs://b/more/*", "--overwrite=true", "--fold_digits=false",
                                 "--num_shards=4"])
    assert args == ["--input=gs://b/in/*", "--input=gs://b/more/*", "--overwrite", "--num_shards=4"]
    with pytest.raises(SystemExit, match="true or false"):
        launch.template_args(["--overwrite=yes"])
    parser = argparse.ArgumentParser()
    FirsthandOptions._add_argparse_args(parser)
    parsed = parser.parse_args(args)
    assert parsed.overwrite and not parsed.fold_digits and parsed.num_shards == 4
    assert parsed.input == ["gs://b/in/*", "gs://b/more/*"]


def test_dockerfile_passes_hadolint_and_uses_this_beam_version():
    dockerfile = DEPLOY / "dataflow" / "Dockerfile"
    result = subprocess.run([_tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    assert f"ARG BEAM_VERSION={BEAM_VERSION}" in text
    assert "FROM apache/beam_python3.11_sdk:${BEAM_VERSION}" in text
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    copies = re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.M)
    assert len(copies) >= 5
    for source in copies:
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which is not in the repository"
            assert path.rstrip("/") in allowed, f".dockerignore keeps {path} out of the build context"


def test_hadolint_really_lints():
    bad = "FROM debian\nRUN apt-get update && apt-get install -y curl\n"
    result = subprocess.run([_tool("hadolint"), "-"], input=bad, capture_output=True, text=True)
    assert result.returncode != 0 and "DL3008" in result.stdout


def test_sdist_for_setup_file_staging_carries_the_model_and_data_files(tmp_path):
    result = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path),
                             str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (sdist,) = tmp_path.glob("firsthand-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "detectors" / "data").rglob("*")
               if p.is_file() and p.suffix in (".txt", ".json", ".ftz", ".md")}
    assert shipped and shipped <= names, shipped - names
    assert {"pyproject.toml", "pipeline/run.py", "schemas/__init__.py"} <= names


# -- Flink ---------------------------------------------------------------------------------

def _yaml_documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_flink_manifests_pass_yamllint():
    config = "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}"
    result = subprocess.run([_tool("yamllint"), "-d", config, *map(str, sorted((DEPLOY / "flink").glob("*.yaml")))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_job_server_manifest_is_valid_kubernetes_and_matches_beam():
    documents = _yaml_documents(DEPLOY / "flink" / "job-server.yaml")
    assert [d["kind"] for d in documents] == ["Deployment", "Service"]
    for d in documents:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
    image = documents[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    flink, beam = re.fullmatch(r"apache/beam_flink([0-9.]+)_job_server:([0-9.]+)", image).groups()
    assert beam == BEAM_VERSION and flink in FLINK_VERSIONS_BEAM_SUPPORTS


def test_flink_deployment_runs_a_worker_pool_sidecar_beam_can_reach():
    (deployment,) = _yaml_documents(DEPLOY / "flink" / "flink-deployment.yaml")
    assert deployment["apiVersion"] == "flink.apache.org/v1beta1" and deployment["kind"] == "FlinkDeployment"
    spec = deployment["spec"]
    flink = spec["flinkVersion"].removeprefix("v").replace("_", ".")
    assert flink in FLINK_VERSIONS_BEAM_SUPPORTS and spec["image"].startswith(f"flink:{flink}.")
    job_server = _yaml_documents(DEPLOY / "flink" / "job-server.yaml")[0]
    assert f"beam_flink{flink}_job_server" in job_server["spec"]["template"]["spec"]["containers"][0]["image"]
    # The TaskManager pod template is a core PodTemplateSpec: validate it as one.
    template = spec["taskManager"]["podTemplate"]
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "taskmanager"},
                                  "template": template}, K8S_VERSION, strict=True)
    containers = {c["name"]: c for c in template["spec"]["containers"]}
    sidecar = containers["beam-worker-pool"]
    assert "flink-main-container" in containers
    assert sidecar["args"] == ["--worker_pool"]
    assert [p["containerPort"] for p in sidecar["ports"]] == [50000]
    assert sidecar["image"].endswith("/firsthand:TAG")
    submit = (DEPLOY / "flink" / "submit.sh").read_text()
    assert "--environment_config localhost:50000" in submit and "--environment_type EXTERNAL" in submit


def test_kubernetes_validate_really_validates():
    with pytest.raises(Exception, match="portz"):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"},
                                      "template": {"spec": {"containers": [{"name": "x", "portz": 1}]}}},
                                     K8S_VERSION, strict=True)


# -- scripts -------------------------------------------------------------------------------

def test_deploy_scripts_pass_shellcheck():
    scripts = sorted(map(str, DEPLOY.rglob("*.sh")))
    assert len(scripts) >= 3
    result = subprocess.run([_tool("shellcheck"), *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    bad = subprocess.run([_tool("shellcheck"), "-"], input="#!/bin/bash\nrm -rf $1/*\n", capture_output=True, text=True)
    assert bad.returncode != 0 and "SC2086" in bad.stdout


def test_scripts_are_executable():
    for script in DEPLOY.rglob("*.sh"):
        assert os.access(script, os.X_OK), script
