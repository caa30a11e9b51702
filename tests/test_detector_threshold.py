"""The default reject threshold: chosen on validation human texts at training, recorded in the
stack, used by runs unless overridden, and reported by `firsthand evaluate --human`."""
import json

import numpy as np
import pytest

from detectors.stack import FIXED_THRESHOLD, STACK_FILE, load_stack
from pipeline.cli import main
from tests.test_detector_training import corpus, write_jsonl

pytest.importorskip("fasttext")


def long_rows(n: int, seed: int) -> list[dict]:
    """The toy corpus with texts long enough for the language gate to judge them."""
    rows = corpus(n, seed=seed)
    for r in rows:
        r["text"] = " ".join([r["text"]] * 3)
    return rows


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("threshold")
    train = write_jsonl(folder / "train.jsonl", long_rows(300, 0))
    validation = write_jsonl(folder / "validation.jsonl", [r for r in long_rows(400, 7) if r["label"] == "human"])
    assert main(["train-detector", "--data", train, "--out", str(folder / "m"), "--folds", "2", "--no-ngram",
                 "--validation", validation, "--max-fpr", "0.05", "--quiet"]) == 0
    return folder, validation


def test_the_threshold_is_chosen_on_the_validation_humans_and_recorded(model):
    folder, validation = model
    stack = load_stack(str(folder / "m"))
    record = stack.threshold
    assert record["max_fpr"] == 0.05 and record["chosen_on"][0]["file"] == "validation.jsonl"
    humans = [json.loads(line)["text"] for line in open(validation)]
    scores = stack.score(humans)
    p = scores.probability[scores.supported]
    assert record["human_texts"] == len(p) > 150
    t = record["value"]
    assert 0.5 <= t < 1 and (p >= t).mean() <= 0.05 and record["fpr"] == round(float((p >= t).mean()), 4)
    assert t == 0.5 or (p >= round(t - 0.001, 10)).mean() > 0.05   # the lowest grid value that holds
    assert f"## Default reject threshold\n\n{t}:" in (folder / "m" / "MODEL_CARD.md").read_text()


def test_a_stack_trained_without_validation_keeps_the_fixed_threshold(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", long_rows(200, 1))
    assert main(["train-detector", "--data", train, "--out", str(tmp_path / "m"), "--folds", "2", "--no-ngram",
                 "--quiet"]) == 0
    assert load_stack(str(tmp_path / "m")).threshold["value"] == FIXED_THRESHOLD
    document = json.loads((tmp_path / "m" / STACK_FILE).read_text())
    assert document["threshold"]["chosen_on"] is None


def test_bad_validation_options_are_refused(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", long_rows(100, 2))
    machine = write_jsonl(tmp_path / "machine.jsonl", [r for r in long_rows(20, 3) if r["label"] == "machine"])
    assert main(["train-detector", "--data", train, "--out", str(tmp_path / "m"), "--validation", machine,
                 "--quiet"]) == 2
    assert "no human rows" in capsys.readouterr().err
    assert main(["train-detector", "--data", train, "--out", str(tmp_path / "m"), "--max-fpr", "1.5",
                 "--quiet"]) == 2
    assert "--max-fpr must be in (0, 1)" in capsys.readouterr().err


def test_evaluate_human_reports_rejections_per_source_and_language(model, tmp_path, capsys):
    folder, _ = model
    stack = load_stack(str(folder / "m"))
    humans = [r for r in long_rows(120, 11) if r["label"] == "human"]
    for i, r in enumerate(humans):
        r.pop("label")                           # a human-only file needs no label
        r["dataset"] = "blogs" if i % 2 else "news"
    german = {"text": "Wir sind am Sonntag auf den Markt gegangen und mein Bruder hat altes Brot gekauft, weil es "
                      "billig war. Dann kam der Regen und wir sind lachend nach Hause gelaufen. " * 3}
    path = write_jsonl(tmp_path / "humans.jsonl", humans + [german])
    assert main(["evaluate", "--human", path, "--model", str(folder / "m"), "--json", str(tmp_path / "r.json"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "source blogs" in out and "language de" in out
    report = json.loads((tmp_path / "r.json").read_text())["human_rejections"]
    assert report["threshold"] == stack.threshold["value"]
    texts = [r["text"] for r in humans]
    scores = stack.score(texts)
    p = scores.probability[scores.supported]
    overall = report["overall"]
    assert overall["texts"] == len(humans) + 1 and overall["declined_by_language_gate"] >= 1
    assert overall["rejected_at_0.5"] == round(float((p >= 0.5).mean()), 4)
    assert overall["rejected_at_threshold"] == round(float((p >= report["threshold"]).mean()), 4)
    assert report["by_language"]["de"]["scored"] == 0
    assert report["by_source"]["blogs"]["texts"] + report["by_source"]["news"]["texts"] == len(humans)
    assert report["by_source"]["humans.jsonl"]["texts"] == 1      # no dataset: grouped under its file
    assert main(["evaluate", "--human", path, "--model", str(folder / "m"), "--threshold", "0.5", "--json",
                 str(tmp_path / "r5.json"), "--quiet"]) == 0
    at_half = json.loads((tmp_path / "r5.json").read_text())["human_rejections"]["overall"]
    assert at_half["rejected_at_threshold"] == at_half["rejected_at_0.5"]
    assert main(["evaluate", "--model", str(folder / "m"), "--quiet"]) == 2
    assert "give --data" in capsys.readouterr().err
