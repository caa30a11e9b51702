"""Training, saving, loading and evaluating a detector stack; the train-detector and evaluate commands."""
import gzip
import json
import random

import numpy as np
import pytest
import zstandard

from detectors.evaluation import evaluate, leave_one_dataset_out
from detectors.labelled import read_labelled
from detectors.ngram import NgramParams
from detectors.stack import NGRAM_FILE, STACK_FILE, ModelFileError, default_stack_folder, load_stack
from detectors.training import TrainSettings, group_folds, train_stack, write_stack
from pipeline.cli import main

pytest.importorskip("fasttext")
SMALL = NgramParams(bucket=20_000, cutoff=2_000)   # the defaults cost seconds per training on any data

HUMAN_WORDS = ("we went down to the market on sunday and my brother bought old bread because it was "
               "cheap then the rain came so we ran home laughing about nothing at all").split()
MACHINE_WORDS = ("furthermore it is crucial to delve into the intricate landscape of this multifaceted "
                 "topic which underscores a pivotal and comprehensive framework moreover").split()


def corpus(n: int, seed: int = 0, datasets=("alpha", "beta")) -> list[dict]:
    """Human rows draw mostly from plain words, machine rows mostly from LLM style words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "machine" if i % 2 else "human"
        main, other = (MACHINE_WORDS, HUMAN_WORDS) if label == "machine" else (HUMAN_WORDS, MACHINE_WORDS)
        words = [rng.choice(main if rng.random() < 0.75 else other) for _ in range(rng.randint(40, 90))]
        text = ". ".join(" ".join(words[j:j + 12]).capitalize() for j in range(0, len(words), 12)) + "."
        rows.append({"text": text, "label": label, "dataset": datasets[i % 4 // 2 % len(datasets)],
                     "domain": "news", "generator": "toy-lm" if label == "machine" else "human",
                     "license": "CC0"})
    return rows


def write_jsonl(path, rows, extra_lines=()):
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    data = ("\n".join(lines) + "\n").encode()
    if str(path).endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    elif str(path).endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return str(path)


def test_bad_rows_are_counted_with_reasons_and_good_ones_kept(tmp_path):
    bad = ["not json", "[1, 2]", '{"label": "human"}', '{"text": "  ", "label": "human"}',
           '{"text": "x", "label": "robot"}', ""]
    for suffix in (".jsonl", ".jsonl.gz", ".jsonl.zst"):
        data = read_labelled([write_jsonl(tmp_path / f"d{suffix}", corpus(6), bad)])
        assert (len(data), data.read, data.bad) == (6, 12, 6)
        assert data.labels == [0, 1, 0, 1, 0, 1] and data.licenses == {"alpha": {"CC0"}, "beta": {"CC0"}}
        assert any("not JSON" in p for p in data.problems) and any("'robot'" in p for p in data.problems)


def test_a_damaged_compressed_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "cut.jsonl.zst"
    write_jsonl(path, corpus(200))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(ValueError, match="cut.jsonl.zst"):
        read_labelled([str(path)])
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_labelled([str(tmp_path / "missing.jsonl")])


def test_texts_that_start_alike_share_a_fold():
    texts = ["The cat sat on the mat today and then left.", "The cat sat on the mat today, a continuation.",
             "Something else entirely begins here."] * 3
    folds = group_folds(texts, 5)
    assert folds[0] == folds[1] == folds[3] and np.array_equal(folds, group_folds(texts, 5))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    data = read_labelled([write_jsonl(folder / "train.jsonl", corpus(400))])
    result = train_stack(data, TrainSettings(folds=3, ngram=SMALL))
    write_stack(result, str(folder / "model"), {"datasets": ["alpha", "beta"]}, "card")
    return folder, data, result


def test_training_learns_and_the_saved_stack_scores_like_the_trained_one(trained):
    folder, data, result = trained
    assert result.report["out_of_fold"]["auroc"] > 0.95
    assert result.feature_names[0] == "ngram.ngram_machine_logit"
    assert "style.zstd_ratio" not in result.stacker.inputs   # excluded by default: a length proxy
    stack = load_stack(str(folder / "model"))
    probability = stack.score(data.texts[:50]).probability
    expected = result.stacker.probability(*_features(result, data.texts[:50]))
    assert np.allclose(probability, expected, atol=1e-6)
    assert (folder / "model" / "MODEL_CARD.md").read_text() == "card"


def _features(result, texts):
    stack = result.stack()
    features, _, _ = stack.features(texts)
    return features, stack.feature_names


def test_training_is_deterministic(trained, tmp_path):
    folder, data, _ = trained
    again = train_stack(data, TrainSettings(folds=3, ngram=SMALL))
    write_stack(again, str(tmp_path / "again"), {"datasets": ["alpha", "beta"]}, "card")
    for name in (STACK_FILE, NGRAM_FILE):
        assert (tmp_path / "again" / name).read_bytes() == (folder / "model" / name).read_bytes()


def test_an_altered_or_missing_model_file_is_refused_with_the_reason(trained, tmp_path):
    folder, _, _ = trained
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (STACK_FILE, NGRAM_FILE):
        (copy / name).write_bytes((folder / "model" / name).read_bytes())
    damaged = bytearray((copy / NGRAM_FILE).read_bytes())
    damaged[-10] ^= 0xFF
    (copy / NGRAM_FILE).write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError, match="sha256"):
        load_stack(str(copy))
    (copy / STACK_FILE).unlink()
    with pytest.raises(ModelFileError, match="no readable stack.json"):
        load_stack(str(copy))


def test_evaluation_reports_pooled_per_group_and_leave_one_dataset_out(trained):
    folder, data, _ = trained
    stack = load_stack(str(folder / "model"))
    report = evaluate(stack, data)
    assert report["pooled"]["auroc"] > 0.95 and report["pooled"]["rows"] == len(data)
    assert set(report["dataset"]) == {"alpha", "beta"}
    # the generator group is machine only: scored against the human rows of its datasets
    assert report["generator"]["toy-lm"]["rows"] == len(data)
    lodo = leave_one_dataset_out(data, data, TrainSettings(folds=2, ngram="off"))
    assert set(lodo["datasets"]) == {"alpha", "beta"} and lodo["mean_auroc"] > 0.9


def test_train_detector_and_evaluate_commands(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl.zst", corpus(300), ["broken line"])
    test = write_jsonl(tmp_path / "test.jsonl", corpus(100, seed=1))
    assert main(["train-detector", "--data", train, "--out", str(tmp_path / "m"), "--folds", "2", "--ngram-buckets", "20000", "--quiet"]) == 0
    assert "out-of-fold AUROC" in capsys.readouterr().out
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text()
    assert "| alpha |" in card and "CC0" in card
    assert main(["evaluate", "--data", test, "--model", str(tmp_path / "m"), "--json", str(tmp_path / "r.json"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "pooled" in out and "dataset alpha" in out
    assert json.loads((tmp_path / "r.json").read_text())["evaluation"]["pooled"]["rows"] == 100
    assert main(["evaluate", "--data", test, "--model", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert "no readable stack.json" in capsys.readouterr().err
    only_human = write_jsonl(tmp_path / "human.jsonl", [r for r in corpus(10) if r["label"] == "human"])
    assert main(["train-detector", "--data", only_human, "--out", str(tmp_path / "x"), "--quiet"]) == 2


def test_the_shipped_stack_loads_flags_residue_and_ignores_cheap_evasion():
    stack = load_stack(default_stack_folder())
    clean = ("Certainly! Here's a comprehensive overview of the topic. It is crucial to delve into the "
             "intricate interplay of factors that underscore this multifaceted issue.")
    attacked = clean.replace("a", "\u0430").replace(" ", " \u200b").replace("e", "\u0435")
    human = ("we went down to the market on sunday and my brother bought old bread because it was cheap, "
             "then the rain came so we ran home laughing about nothing at all.")
    scores = stack.score([clean, attacked, human])
    assert scores.residue[0] is not None and scores.residue[1] == scores.residue[0]
    assert abs(scores.probability[0] - scores.probability[1]) < 1e-6
    assert scores.probability[0] > scores.probability[2]
    assert stack.about["datasets"]   # the shipped card names what it was trained on


def test_folds_that_leave_one_label_are_refused_not_trained_on():
    rows = corpus(40)
    for r in rows:   # every text starts alike: one group, so every other fold is empty
        r["text"] = "Always the same six opening words " + r["text"]
    data = read_labelled_rows(rows)
    with pytest.raises(ValueError, match="fold .* is empty or leaves one label"):
        train_stack(data, TrainSettings(folds=3, ngram="off"))


def read_labelled_rows(rows):
    from detectors.labelled import LabelledTexts, _add
    data = LabelledTexts()
    for r in rows:
        assert _add(data, json.dumps(r)) is None
    return data


def test_evaluate_with_human_rows_from_another_file_and_leave_one_dataset_out(tmp_path, capsys):
    model = tmp_path / "m"
    train = write_jsonl(tmp_path / "train.jsonl", corpus(300))
    assert main(["train-detector", "--data", train, "--out", str(model), "--folds", "2", "--no-ngram", "--quiet"]) == 0
    machine_only = write_jsonl(tmp_path / "attacks.jsonl", [r for r in corpus(60, seed=2) if r["label"] == "machine"])
    humans = write_jsonl(tmp_path / "dev.jsonl", corpus(60, seed=3))
    assert main(["evaluate", "--data", machine_only, "--human-from", humans, "--model", str(model), "--quiet",
                 "--lodo-train", train, "--folds", "2", "--no-ngram", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["evaluation"]["pooled"]["rows"] == 60 and report["evaluation"]["pooled"]["machine"] == 30
    assert set(report["leave_one_dataset_out"]["datasets"]) == {"alpha", "beta"}
    assert "leave-one-dataset-out AUROC" in capsys.readouterr().out
    assert main(["evaluate", "--data", str(tmp_path / "missing.jsonl"), "--human-from", humans,
                 "--model", str(model), "--quiet"]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


def test_a_70_30_corpus_is_calibrated_to_a_50_percent_prior():
    """Each text appears 10 times, 7 labelled human and 3 machine: the text tells nothing, and
    every isotonic point (a text's tied copies) has a class-balanced mean label of exactly
    3 * (7/3) / (3 * (7/3) + 7) = 0.5. So every probability is 0.5, the prior the stack
    promises whatever the training mix; unweighted calibration would give the 30% share."""
    texts = [r["text"] for r in corpus(30, seed=4)]
    rows = [{"text": t, "label": "machine" if i < 3 else "human", "dataset": "alpha"}
            for t in texts for i in range(10)]
    data = read_labelled_rows(rows)
    assert int(data.y.sum()) * 7 == (len(data) - int(data.y.sum())) * 3
    result = train_stack(data, TrainSettings(folds=3, ngram="off"))
    assert np.allclose(result.oof_probability, 0.5, atol=1e-12)
    assert np.allclose(result.stack().score(texts[:3]).probability, 0.5, atol=1e-12)
