"""Evaluating a detector stack on labelled texts: pooled and per group, and leave-one-dataset-out.

Per group (dataset, domain, generator): a group with both labels is scored on its own rows; a
group with machine rows only (a generator) is scored against the human rows of the same
datasets, since that is the comparison a user of the group faces. Human rows of each group also
report their false-positive rate at the pooled threshold for 1% FPR: where false positives
concentrate (which writers the detector wrongs) is what a pooled AUROC hides.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from detectors.labelled import GROUP_FIELDS, LabelledTexts
from detectors.metrics import auroc, class_balanced_weights, expected_calibration_error, threshold_at_fpr, tpr_at_fpr

Progress = Callable[[str], None]


def score_texts(stack, texts: list[str], batch: int = 512,
                progress: Progress | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """Calibrated probabilities for `texts`, the docs/s it took (one process), and which texts
    the language gate accepts (a run writes no probability for the others)."""
    started = time.perf_counter()
    out, supported = [], []
    for i in range(0, len(texts), batch):
        scores = stack.score(texts[i:i + batch])
        out.append(scores.probability)
        supported.append(scores.supported)
        if progress and (i // batch) % 20 == 19:
            progress(f"scored {i + batch}/{len(texts)}")
    seconds = time.perf_counter() - started
    if not out:
        return np.zeros(0, np.float32), 0.0, np.zeros(0, bool)
    return np.concatenate(out), len(texts) / max(seconds, 1e-9), np.concatenate(supported)


def quality(probability: np.ndarray, y: np.ndarray) -> dict:
    """AUROC, TPR at 1% and 5% FPR, calibration error; None where a label is missing.

    The calibration error weighs both classes equally: stacks are calibrated for a 50% prior."""
    both = 0 < int(y.sum()) < len(y)
    return {"rows": int(len(y)), "machine": int(y.sum()),
            "auroc": round(auroc(probability, y), 4) if both else None,
            "tpr_at_1pct_fpr": round(tpr_at_fpr(probability, y, 0.01), 4) if both else None,
            "tpr_at_5pct_fpr": round(tpr_at_fpr(probability, y, 0.05), 4) if both else None,
            "ece": round(expected_calibration_error(probability, y, weights=class_balanced_weights(y)), 4) if both else None}


def group_report(probability: np.ndarray, data: LabelledTexts) -> dict:
    y = data.y
    threshold = threshold_at_fpr(probability, y, 0.01) if 0 < y.sum() < len(y) else 0.5
    dataset = data.column("dataset")
    out: dict = {"pooled_threshold_at_1pct_fpr": round(float(threshold), 6)}
    for name in GROUP_FIELDS:
        column = data.column(name)
        groups = {}
        for value in sorted(set(column.tolist())):
            rows = column == value
            if not (y[rows] == 0).any():   # machine only: against the human rows of its datasets
                rows = rows | ((y == 0) & np.isin(dataset, sorted(set(dataset[rows].tolist()))))
            report = quality(probability[rows], y[rows])
            human = rows & (y == 0)
            report["false_positive_rate_at_pooled_threshold"] = (
                round(float((probability[human] > threshold).mean()), 4) if human.any() else None)
            groups[value] = report
        out[name] = groups
    return out


def evaluate(stack, data: LabelledTexts, progress: Progress | None = None) -> dict:
    return report_scores(data, *score_texts(stack, data.texts, progress=progress))


def report_scores(data: LabelledTexts, probability: np.ndarray, docs_per_second: float,
                  supported: np.ndarray) -> dict:
    """The evaluation report of scores from `score_texts`. Metrics use every row's probability,
    including rows the language gate would decline in a run (counted in
    `declined_by_language_gate`)."""
    return {"pooled": quality(probability, data.y), **group_report(probability, data),
            "declined_by_language_gate": int((~supported).sum()),
            "docs_per_second_one_process": round(docs_per_second, 1)}


def human_rejections(stack, data: LabelledTexts, threshold: float, progress: Progress | None = None) -> dict:
    """For texts known to be human: the share a run would reject as synthetic at `threshold` and
    at 0.5, overall, per source (`dataset`) and per identified language. Shares are of the texts
    that get a probability; the language gate's declines (never rejected as synthetic) are counted
    apart. No date prior: the shares hold for texts first seen after the cut-off."""
    probability, supported, language = [], [], []
    for i in range(0, len(data.texts), 512):
        scores = stack.score(data.texts[i:i + 512])
        probability.append(scores.probability)
        supported.append(scores.supported)
        language.extend(scores.language)
        if progress and (i // 512) % 20 == 19:
            progress(f"scored {i + 512}/{len(data.texts)}")
    p = np.concatenate(probability) if probability else np.zeros(0, np.float32)
    ok = np.concatenate(supported) if supported else np.zeros(0, bool)

    def shares(rows: np.ndarray) -> dict:
        scored = rows & ok
        n = int(scored.sum())
        return {"texts": int(rows.sum()), "scored": n, "declined_by_language_gate": int((rows & ~ok).sum()),
                "rejected_at_threshold": round(float((p[scored] >= threshold).mean()), 4) if n else None,
                "rejected_at_0.5": round(float((p[scored] >= 0.5).mean()), 4) if n else None}
    source, lang = data.column("dataset"), np.asarray(language, dtype=object)
    return {"threshold": threshold, "overall": shares(np.ones(len(p), bool)),
            "by_source": {v: shares(source == v) for v in sorted(set(source.tolist()))},
            "by_language": {v: shares(lang == v) for v in sorted(set(lang.tolist()))}}


def leave_one_dataset_out(train: LabelledTexts, test: LabelledTexts, settings,
                          progress: Progress | None = None) -> dict:
    """For each dataset of `test`: train a whole stack on `train` without that dataset, score
    the dataset's `test` rows. The honest estimate of quality on text never seen."""
    from detectors.training import train_stack
    say = progress or (lambda message: None)
    results = {}
    for held_out in sorted(set(test.dataset)):
        rest = train.subset(train.column("dataset") != held_out)
        if len(set(rest.labels)) < 2:
            continue
        say(f"leave out {held_out}: train on {len(rest)} rows")
        trained = train_stack(rest, settings, progress=lambda m: say(f"  {held_out}: {m}"))
        stack = trained.stack()
        target = test.subset(test.column("dataset") == held_out)
        probability, _, _ = score_texts(stack, target.texts)
        results[held_out] = quality(probability, target.y)
    aurocs = [r["auroc"] for r in results.values() if r["auroc"] is not None]
    return {"datasets": results, "mean_auroc": round(float(np.mean(aurocs)), 4) if aurocs else None}
