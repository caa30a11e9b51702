"""Training the detector stack: fastText, then a stacker on out-of-fold scores, then calibration.

    features   every detector's features for every text (folded once, as at scoring)
    ngram      k-fold: a fastText model per fold scores the texts it did not see, so the
               stacker learns how far to trust fastText on unseen text, not on its own
               training data; a final model is trained on everything
    stacker    logistic regression on the chosen features, each clipped to its training
               range (0.5th-99.5th percentile); k-fold again for out-of-fold decisions
    calibrate  isotonic regression of the labels on the out-of-fold decisions, the classes
               weighted equally: the probability assumes a 50% machine prior, whatever the
               training mix (the date prior and users' thresholds then act on known odds)

Folds are by group, so near-identical texts stay together: Fast-DetectGPT and Glimpse machine
texts continue the first ~30 tokens of a human text, so the group is the first words.
Everything is deterministic for the same data and settings.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from detectors.calibration import fit_isotonic, fit_logistic
from detectors.labelled import LabelledTexts
from detectors.metrics import (auroc, class_balanced_weights, expected_calibration_error, threshold_for_max_fpr,
                               tpr_at_fpr)
from detectors.stack import (NGRAM_FILE, STACK_FILE, DetectorStack, Stacker, build_detectors, sha256_of,
                             stack_document)
from detectors.style import StyleDetector
from detectors.textnorm import fold_for_detection

NGRAM_FEATURE = "ngram.ngram_machine_logit"
# The style features are computed and written as signals but left out of the default stacker:
# chosen by leave-one-dataset-out AUROC (bench/detector_quality.py; BiScope, Fast-DetectGPT,
# Glimpse, OUTFOX, M4), the stack without them averages 0.780 against 0.765 with them, mostly on
# OUTFOX's student essays (0.669 against 0.551), where style learned on other datasets points the
# wrong way. Newline rate and zstd ratio marked the dataset (source formatting, length) rather
# than the writer in every fit.
EXCLUDED_FEATURES = tuple(f"style.{name}" for name in StyleDetector.feature_names)
GROUP_WORDS = 6
CLIP_QUANTILES = (0.005, 0.995)
_WORD = re.compile(r"\w+")


@dataclass
class TrainSettings:
    folds: int = 5
    l2: float = 1.0
    exclude: tuple[str, ...] = EXCLUDED_FEATURES
    ngram: object = None           # detectors.ngram.NgramParams; None = its defaults, "off" = no fastText


@dataclass
class TrainedStack:
    stacker: Stacker
    detectors: list
    files: dict[str, bytes]
    oof_probability: np.ndarray                        # calibrated, out of fold
    features: np.ndarray                               # every feature; the ngram one out of fold
    feature_names: list[str]
    folds: np.ndarray
    report: dict = field(default_factory=dict)

    def stack(self) -> DetectorStack:
        """The trained stack, ready to score (as `load_stack` would give it after `write_stack`)."""
        return DetectorStack(self.detectors, self.stacker)


def group_folds(texts: list[str], folds: int) -> np.ndarray:
    """Fold index per text from its first words, lowercased: texts that start alike share a fold."""
    keys = (" ".join(_WORD.findall(text[:400].lower())[:GROUP_WORDS]) for text in texts)
    return np.fromiter((zlib.crc32(key.encode("utf-8", "replace")) % folds for key in keys),
                       dtype=np.int64, count=len(texts))


def feature_matrix(detectors: list, folded: list[str], batch: int = 2048) -> np.ndarray:
    return np.concatenate([np.concatenate([d.features(folded[i:i + batch]) for d in detectors], axis=1)
                           for i in range(0, len(folded), batch)], axis=0)


def train_stack(data: LabelledTexts, settings: TrainSettings = TrainSettings(),
                progress: Callable[[str], None] = lambda message: None) -> TrainedStack:
    if len(set(data.labels)) < 2:
        raise ValueError("training needs both human and machine rows")
    started = time.perf_counter()
    y = data.y
    folds = group_folds(data.texts, settings.folds)
    for k in range(settings.folds):
        rest = y[folds != k]
        if not (folds == k).any() or len(set(rest.tolist())) < 2:
            raise ValueError(f"fold {k + 1} of {settings.folds} is empty or leaves one label to train on "
                             f"({len(y)} rows, {int(y.sum())} machine): give more, and more varied, rows "
                             f"of both labels, or fewer --folds")
    progress(f"folding {len(data)} texts")
    folded = [fold_for_detection(t) for t in data.texts]
    hand = build_detectors(None)
    names = [f"{d.name}.{f}" for d in hand for f in d.feature_names]
    progress("computing residue, lexicon and style features")
    x = feature_matrix(hand, folded).astype(np.float64)
    files: dict[str, bytes] = {}
    use_ngram = settings.ngram != "off"
    if use_ngram:
        x, names, files = _with_ngram(folded, y, folds, x, names, settings, progress)
    inputs = tuple(n for n in names if n not in settings.exclude)
    columns = [names.index(n) for n in inputs]
    design = x[:, columns]
    low, high = np.quantile(design, CLIP_QUANTILES, axis=0)
    design = np.clip(design, low, high)
    progress(f"stacker on {len(inputs)} features, {settings.folds}-fold")
    oof_decision = np.zeros(len(y))
    for k in range(settings.folds):
        held = folds == k
        model = fit_logistic(design[~held], y[~held], l2=settings.l2)
        oof_decision[held] = model.decision(design[held])
    balanced = class_balanced_weights(y)   # probabilities for a 50% prior, whatever the data's mix
    calibrator = fit_isotonic(oof_decision, y, weights=balanced)
    logistic = fit_logistic(design, y, l2=settings.l2)
    stacker = Stacker(inputs, low, high, logistic, calibrator)
    detectors = build_detectors(files.get(NGRAM_FILE))
    oof_probability = calibrator(oof_decision)
    report = {"rows": len(y), "machine_rows": int(y.sum()), "folds": settings.folds, "l2": settings.l2,
              "inputs": list(inputs),
              "weights": dict(zip(inputs, np.round(logistic.weights, 4).tolist())),
              "out_of_fold": {"auroc": auroc(oof_decision, y), "tpr_at_1pct_fpr": tpr_at_fpr(oof_decision, y, 0.01),
                              "ece": expected_calibration_error(oof_probability, y, weights=balanced)},
              "seconds": round(time.perf_counter() - started, 1)}
    if use_ngram:
        report["out_of_fold"]["ngram_auroc"] = auroc(x[:, names.index(NGRAM_FEATURE)], y)
    return TrainedStack(stacker, detectors, files, oof_probability, x, names, folds, report)


def _with_ngram(folded, y, folds, x, names, settings, progress):
    from detectors.ngram import NgramDetector, NgramParams, prepare, train_ngram_model
    params = settings.ngram or NgramParams()
    lines = [prepare(t) for t in folded]
    oof = np.zeros(len(y))
    with tempfile.TemporaryDirectory(prefix="firsthand-train-") as tmp:
        for k in range(settings.folds):
            held = np.flatnonzero(folds == k)
            rest = np.flatnonzero(folds != k)
            progress(f"fastText fold {k + 1}/{settings.folds}: train on {len(rest)}, score {len(held)}")
            path = os.path.join(tmp, f"fold{k}.ftz")
            train_ngram_model([lines[i] for i in rest], y[rest].tolist(), path, params, prepared=True)
            oof[held] = NgramDetector.load(path).logits_prepared([lines[i] for i in held])
        progress(f"fastText on all {len(y)} rows")
        final = os.path.join(tmp, NGRAM_FILE)
        train_ngram_model(lines, y.tolist(), final, params, prepared=True)
        with open(final, "rb") as f:
            files = {NGRAM_FILE: f.read()}
    return np.c_[oof, x], [NGRAM_FEATURE] + names, files


def model_card(trained: TrainedStack, data: LabelledTexts, sources: list[str], threshold: dict | None = None) -> str:
    """A Markdown card: what the stack was trained on (with licences) and its out-of-fold quality."""
    report = trained.report
    y = data.y
    lines = ["# firsthand detector stack: model card", "",
             "Written by `firsthand train-detector`. Files are checked against the sha256 in stack.json "
             "when loaded.", "", "## Training data", "", f"Files: {', '.join(f'`{s}`' for s in sources)}", "",
             "| dataset | human | machine | licence |", "|---|---|---|---|"]
    dataset = data.column("dataset")
    for name in sorted(set(dataset.tolist())):
        rows = dataset == name
        licences = "; ".join(sorted(data.licenses.get(name, ()))) or "not stated"
        lines.append(f"| {name} | {int((y[rows] == 0).sum())} | {int((y[rows] == 1).sum())} | {licences} |")
    oof = report["out_of_fold"]
    lines += ["", "## Stacker", "", f"Logistic regression (L2 {report['l2']}) on {len(report['inputs'])} "
              f"features clipped to their training range, isotonic calibration on {report['folds']}-fold "
              f"out-of-fold decisions. Standardised weights:", ""]
    lines += [f"- `{name}`: {weight:+.3f}" for name, weight in report["weights"].items()]
    lines += ["", "## Out-of-fold quality on the training data", "",
              f"AUROC {oof['auroc']:.4f}, TPR at 1% FPR {oof['tpr_at_1pct_fpr']:.4f}, expected calibration "
              f"error {oof['ece']:.4f}" + (f"; fastText alone AUROC {oof['ngram_auroc']:.4f}" if "ngram_auroc" in oof else "")
              + ".", "", "Folds hold texts that start alike together, but texts of one dataset share "
              "their sources across folds: this is optimistic. `firsthand evaluate` on held-out data and "
              "its leave-one-dataset-out mode give the honest figures.", ""]
    if threshold and threshold.get("chosen_on"):
        files = ", ".join(f"`{f['file']}`" for f in threshold["chosen_on"])
        lines += ["## Default reject threshold", "",
                  f"{threshold['value']}: the lowest at which at most {threshold['max_fpr']:.1%} of the "
                  f"{threshold['human_texts']} human texts of {files} (never trained on) score at or above it; "
                  f"{threshold['fpr']:.2%} do. `firsthand run` uses it unless --synthetic-threshold is given.", ""]
    return "\n".join(lines)


def validation_threshold(stack: DetectorStack, validation: LabelledTexts, max_fpr: float,
                         files: list[str]) -> dict:
    """The default reject threshold: the lowest (on a 0.001 grid, at least 0.5) at which at most
    `max_fpr` of the human texts of `validation` score at or above it. Texts the language gate
    declines get no probability in a run, so they do not count; no date prior is applied, so the
    threshold holds for texts first seen after the cut-off."""
    from detectors.evaluation import score_texts
    human = validation.subset(validation.y == 0)
    probability, _, supported = score_texts(stack, human.texts)
    scores = probability[supported]
    if len(scores) == 0:
        raise ValueError("the validation data holds no human text the stack would score (English, long "
                         "enough): give human texts of the language the stack is trained on")
    value = threshold_for_max_fpr(scores, max_fpr)
    return {"value": value, "max_fpr": max_fpr, "fpr": round(float((scores >= value).mean()), 4),
            "human_texts": int(len(scores)), "declined_by_language_gate": int((~supported).sum()),
            "chosen_on": [{"file": os.path.basename(path), "sha256": sha256_of(path)} for path in files]}


def write_stack(trained: TrainedStack, folder: str, about: dict, card: str | None = None,
                threshold: dict | None = None) -> str:
    """Write (to a local folder; copy it to a bucket afterwards) the model files, MODEL_CARD.md and stack.json into `folder` (created); stack.json
    goes last, so a folder without it is an unfinished write."""
    import json
    os.makedirs(folder, exist_ok=True)
    if card is not None:
        with open(os.path.join(folder, "MODEL_CARD.md"), "w", encoding="utf-8") as f:
            f.write(card)
    for name, data in trained.files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    document = stack_document(trained.stacker, trained.detectors, trained.files, about, threshold)
    partial = os.path.join(folder, STACK_FILE + ".partial")
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(partial, os.path.join(folder, STACK_FILE))
    return folder
