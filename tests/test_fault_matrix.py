"""Rows of docs/reliability.md that need a whole run: odd files, the manifest's last step,
where output paths come from, and what a config file may hold."""
import json
import os

import pyarrow as pa
import pytest

from pipeline.options import ConfigError
from pipeline.run import run
from tests.helpers import jsonl_bytes, manifest, parquet_bytes, read_rows, write, zst

OFF = ["--detectors", "off"]


def test_odd_files_end_as_errors_or_counted_skips_and_the_counts_balance(tmp_path, monkeypatch):
    src = tmp_path / "in"
    write(str(src / "good.jsonl"), jsonl_bytes([{"text": "an ordinary document of a few words"},
                                                {"text": "binary \x00 residue and an \x1b escape"}]))
    for name in ("empty.jsonl", "empty.warc.gz", "empty.parquet"):
        write(str(src / name), b"")
    write(str(src / "empty-stream.jsonl.zst"), zst(b""))
    write(str(src / "locked.jsonl"), jsonl_bytes([{"text": "never readable"}]))
    write(str(src / "table.parquet"), parquet_bytes(pa.table({"text": ["from parquet"]})))
    os.symlink(str(tmp_path / "gone.jsonl"), str(src / "dangling.jsonl"))

    from apache_beam.io.filesystems import FileSystems
    real_open = FileSystems.open

    def refusing_open(path, *args, **kwargs):   # root reads any mode-000 file, so refuse here
        if path.endswith("locked.jsonl"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(FileSystems, "open", staticmethod(refusing_open))

    out = str(tmp_path / "out")
    run(["--input", f"{src}/*", "--output", out, *OFF])
    m = manifest(out)
    errors = {os.path.basename(e["source_file"]): (e["kind"], e["message"]) for e in read_rows(out, "errors")}
    assert {name: kind for name, (kind, _) in errors.items()} == {
        "dangling.jsonl": "unreadable_file", "locked.jsonl": "unreadable_file", "empty.parquet": "unreadable_file"}
    assert "No such file" in errors["dangling.jsonl"][1] and "Permission denied" in errors["locked.jsonl"][1]
    skipped = {os.path.basename(f["path"]): f["skipped"] for f in m["inputs"]}
    assert len(skipped) == 8
    assert skipped["empty.jsonl"] == skipped["empty.warc.gz"] == {"empty_file": 1}
    assert skipped["empty-stream.jsonl.zst"] == {}   # a valid zstd frame holding no line: nothing to flag
    kept = {r["text"]: r["flags"] for r in read_rows(out, "kept")}
    assert kept == {"an ordinary document of a few words": [], "from parquet": [],
                    "binary \x00 residue and an \x1b escape": ["control_characters"]}
    assert m["counts"]["read"] == 6 == m["counts"]["kept"] + m["counts"]["rejected"] + m["counts"]["errors"]
    assert m["accounting"]["balanced"]


def test_output_paths_never_come_from_record_content(tmp_path):
    hostile = ["../../escaped", "/etc/passwd", "kept/../../x", "a\x00b", "C:\\windows", "%2e%2e/y", "~/z"]
    src = write(str(tmp_path / "in" / "ids.jsonl"),
                jsonl_bytes([{"id": i, "url": f"https://x.example/{i}", "text": f"document {n} with a hostile id"}
                             for n, i in enumerate(hostile)]))
    out = tmp_path / "out"
    run(["--input", src, "--output", str(out), *OFF])
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert made == ["in/ids.jsonl", "out/kept/part-00000.parquet", "out/manifest.json", "out/report.html"]
    assert sorted(r["id"] for r in read_rows(str(out), "kept")) == sorted(hostile)


def test_a_run_stopped_before_the_metrics_check_is_never_trusted_and_reruns_cleanly(demo, tmp_path, monkeypatch):
    """The pipeline's manifest becomes manifest.json only after the driver compares it with
    Beam's metrics; a driver killed in between leaves nothing a reader accepts."""
    import pipeline.run as run_module
    from firsthand_reader import RunFolderError, open_run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("driver killed after the pipeline finished")
    monkeypatch.setattr(run_module, "promote_manifest", killed)
    out = str(tmp_path / "run")
    args = ["--input", f"{demo}/*", "--output", out, *OFF]
    with pytest.raises(KeyboardInterrupt):
        run(args)
    assert sorted(os.listdir(out)) == ["errors", "kept", "manifest.unchecked.json", "rejected"]
    with open(os.path.join(out, "manifest.unchecked.json")) as f:
        assert json.load(f)["status"] == "complete"   # balanced in-band, but not yet checked
    with pytest.raises(RunFolderError, match="driver stopped before checking"):
        open_run(out)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="not empty"):
        run(args)
    run([*args, "--overwrite"])
    assert sorted(os.listdir(out)) == ["errors", "kept", "manifest.json", "rejected", "report.html"]
    assert open_run(out).manifest["beam_metrics"]["read.documents"] > 0


def test_metrics_that_disagree_leave_a_failed_manifest_and_no_trusted_one(tmp_path):
    from pipeline.manifest import AccountingError, write_json
    from pipeline.run import promote_manifest
    out = str(tmp_path)
    counts = {"read": 3, "kept": 2, "rejected": 0, "errors": 1}
    write_json(out, "manifest.unchecked.json", {"status": "complete", "counts": counts, "stages": {}})
    with pytest.raises(AccountingError, match="disagree"):
        promote_manifest(out, {"read.documents": 2, "read.errors": 1, "write.kept": 1, "write.errors": 1})
    assert sorted(os.listdir(out)) == ["manifest.failed.json"]
    with open(os.path.join(out, "manifest.failed.json")) as f:
        assert json.load(f)["status"] == "metrics_mismatch"


@pytest.mark.parametrize("payload", [
    "input: !!python/object/apply:os.system ['touch {marker}']\n",
    "input: !!python/name:os.system\n",
    "!!python/object:argparse.Namespace {{input: x}}\n",
])
def test_config_files_never_construct_python_objects(tmp_path, payload):
    from pipeline.options import config_file_args
    marker = tmp_path / "executed"
    config = tmp_path / "config.yaml"
    config.write_text(payload.format(marker=marker))
    with pytest.raises(ConfigError, match="not valid YAML"):
        config_file_args(str(config))
    assert not marker.exists()


def test_no_code_executing_loader_in_the_shipped_packages():
    """Input data, configuration and models are read with plain parsers only: no pickle,
    marshal or shelve, no unsafe YAML, no pickled NumPy arrays, no eval or exec."""
    import ast
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1]
    found = []
    for package in ("pipeline", "detectors", "schemas", "firsthand_reader"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                    found += [f"{where} imports {n}" for n in names
                              if n and n.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve", "joblib")]
                if isinstance(node, ast.Call):
                    func = ast.unparse(node.func)
                    keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                    if func in ("eval", "exec") or func.endswith(("yaml.load", "yaml.unsafe_load", "yaml.full_load",
                                                                 "torch.load")):
                        found.append(f"{where} calls {func}")
                    if keywords.get("allow_pickle") == "True":
                        found.append(f"{where} loads pickled arrays")
    assert not found, found
