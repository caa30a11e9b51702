"""A run rejects at the detector model's default threshold unless --synthetic-threshold is given,
and the manifest and summary say which threshold was used and where it came from."""
import json
import shutil

import pytest

from detectors.stack import STACK_FILE, default_stack_folder
from pipeline.run import run, summary
from tests.helpers import manifest, read_rows

pytest.importorskip("fasttext")
RECORD = {"value": 0.42, "max_fpr": 0.01, "fpr": 0.0081, "human_texts": 615, "declined_by_language_gate": 3,
          "chosen_on": [{"file": "web_validation.jsonl.zst", "sha256": "ab" * 32}]}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The shipped stack with another default threshold recorded in its stack.json."""
    folder = tmp_path_factory.mktemp("model") / "m"
    shutil.copytree(default_stack_folder(), folder)
    document = json.loads((folder / STACK_FILE).read_text())
    document["threshold"] = RECORD
    (folder / STACK_FILE).write_text(json.dumps(document))
    return str(folder)


def test_the_model_default_threshold_decides_and_is_recorded(demo, model, tmp_path):
    out = str(tmp_path / "default")
    run(["--input", f"{demo}/*", "--output", out, "--mode", "tag", "--detector-model", model])
    m = manifest(out)
    detect = m["stages"]["detect"]
    assert detect["threshold"] == 0.42
    assert detect["model"]["threshold"] == {"value": 0.42, "source": "model", "model_default": RECORD}
    rows = [r for r in read_rows(out, "documents") if r["synthetic_probability"] is not None]
    assert any(r["synthetic_probability"] >= 0.42 for r in rows)
    for r in rows:
        assert ("synthetic" in r["reasons"]) == (r["synthetic_probability"] >= 0.42)
    text = summary(m, out)
    assert "threshold 0.42: the model's default, chosen so that at most 1% of 615 held-out human texts" in text
    assert "probabilities assume even odds" in text


def test_synthetic_threshold_overrides_the_model_default(demo, model, tmp_path):
    out = str(tmp_path / "given")
    run(["--input", f"{demo}/*", "--output", out, "--mode", "tag", "--detector-model", model,
         "--synthetic-threshold", "0.97"])
    m = manifest(out)
    assert m["stages"]["detect"]["threshold"] == 0.97
    assert m["stages"]["detect"]["model"]["threshold"]["source"] == "--synthetic-threshold"
    assert m["config"]["detect"]["threshold"] == 0.97
    for r in read_rows(out, "documents"):
        if r["synthetic_probability"] is not None:
            assert ("synthetic" in r["reasons"]) == (r["synthetic_probability"] >= 0.97)
    assert "threshold 0.97: set by --synthetic-threshold" in summary(m, out)
