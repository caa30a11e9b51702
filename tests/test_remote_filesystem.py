"""The whole pipeline against an object store (`memobj://`, tests/objectstore.py): inputs,
detector model, Parquet shards and manifest all go through Beam's FileSystems, never a
local path, and the output holds the same rows as a local run's."""
import io
import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from detectors.stack import default_stack_folder
from pipeline.options import ConfigError
from pipeline.run import run
from tests import objectstore
from tests.helpers import files_under, manifest

BUCKET = f"{objectstore.SCHEME}://bucket"


@pytest.fixture()
def store():
    objectstore.clear()
    yield objectstore
    objectstore.clear()


def _upload_folder(local: str, remote: str) -> None:
    for name in sorted(os.listdir(local)):
        with open(os.path.join(local, name), "rb") as f:
            objectstore.put(f"{remote}/{name}", f.read())


def _rows(parquet: bytes) -> list[dict]:
    return pq.read_table(io.BytesIO(parquet)).to_pylist()


def _comparable(row: dict, local_folder: str | None = None) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, str):
            v = v.replace(f"{local_folder}/", f"{BUCKET}/in/") if local_folder else v
            v = re.sub(r"#[0-9a-f]{16}$", "#<key>", v)
        out[k] = v
    return out


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: json.dumps(r, default=repr, sort_keys=True))


def _local_files(folder: str) -> dict[str, bytes]:
    return {name: Path(folder, name).read_bytes() for name in files_under(folder)}


def test_a_run_on_an_object_store_writes_what_a_local_run_writes(demo, tmp_path, store):
    _upload_folder(demo, f"{BUCKET}/in")
    _upload_folder(default_stack_folder(), f"{BUCKET}/model")
    local = str(tmp_path / "local")
    common = ["--num-shards", "2", "--detector-model"]
    run(["--input", f"{demo}/*", "--output", local, *common, default_stack_folder()])
    run(["--input", f"{BUCKET}/in/*", "--output", f"{BUCKET}/out", *common, f"{BUCKET}/model"])

    remote = {k[len(f"{BUCKET}/out/"):]: store.get(k) for k in store.keys() if k.startswith(f"{BUCKET}/out/")}
    local_files = _local_files(local)
    assert "manifest.json" in remote and not any(k.startswith(".") or "tmp" in k for k in remote)
    parquet = sorted(k for k in local_files if k.endswith(".parquet"))
    remote_parquet = sorted(k for k in remote if k.endswith(".parquet"))
    # Record keys (which pick the shard, and the suffix of a colliding id) derive from the full
    # input path, which differs here: compare each table's rows, not which shard holds them,
    # with local paths mapped to the bucket's and key suffixes masked.
    assert len(parquet) >= 5 and {k.split("/")[0] for k in remote_parquet} == {k.split("/")[0] for k in parquet}
    for table in ("kept", "rejected", "errors"):
        local_rows = [_comparable(row, demo) for name in parquet if name.startswith(f"{table}/")
                      for row in _rows(local_files[name])]
        remote_rows = [_comparable(row) for name in remote_parquet if name.startswith(f"{table}/")
                       for row in _rows(remote[name])]
        assert local_rows and _sorted(remote_rows) == _sorted(local_rows), table
    remote_manifest, local_manifest = json.loads(remote["manifest.json"]), manifest(local)
    assert remote_manifest["counts"] == local_manifest["counts"]
    assert remote_manifest["detector"]["stack_sha256"] == local_manifest["detector"]["stack_sha256"]
    assert sorted(o["path"] for files in remote_manifest["outputs"].values() for o in files) == remote_parquet
    assert sorted(o["path"] for files in local_manifest["outputs"].values() for o in files) == parquet
    assert "report.html" in remote   # written through Beam's FileSystems too
    assert remote_manifest["beam_metrics"]["read.documents"] == local_manifest["beam_metrics"]["read.documents"]


def test_overwrite_on_an_object_store_replaces_the_earlier_run(demo, store):
    _upload_folder(demo, f"{BUCKET}/in")
    args = ["--input", f"{BUCKET}/in/*", "--output", f"{BUCKET}/out", "--detectors", "off"]
    run(args + ["--num-shards", "3"])
    assert any(k.endswith("part-00002.parquet") for k in store.keys())
    with pytest.raises(ConfigError, match="not empty"):
        run(args)
    run(args + ["--num-shards", "1", "--overwrite"])  # fewer shards: the earlier run's extra shards must go
    out = [k[len(f"{BUCKET}/out/"):] for k in store.keys() if k.startswith(f"{BUCKET}/out/")]
    assert sorted(out) == ["errors/part-00000.parquet", "kept/part-00000.parquet", "manifest.json",
                           "rejected/part-00000.parquet", "report.html"]
    assert json.loads(store.get(f"{BUCKET}/out/manifest.json"))["config"]["num_shards"] == 1


def test_an_input_pattern_matching_no_object_is_refused(store):
    with pytest.raises(ConfigError, match="matched no file"):
        run(["--input", f"{BUCKET}/nothing/*", "--output", f"{BUCKET}/out"])
