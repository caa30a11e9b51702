"""The detector stack against issue 19's bars, on ../shared/data.

    .venv/bin/python bench/detector_quality.py --out /tmp/detector-quality.json   # ~35 min on 2 cores

Splits ../shared/data as bench/detector_data.py does (in a temporary folder), then measures the
stack in --model (default: the one shipped in the package). Scores carry no date prior: the
figures hold for text first seen after November 2022.

  web         English human web pages of the validation split (sources and DCLM pages training
              never saw), per source: the share rejected at the model's default threshold
              (bar <= 1%) and at 0.5 (bar <= 10%)
  web_oof     the English human web pages training did use, scored out of fold by a stack trained
              as the shipped one is (5 folds by the texts' first words); --skip-training leaves it out
  dev         pooled AUROC (bar 0.96) and TPR at 1% FPR, per dataset, domain and generator
  attacks     attacks.jsonl.zst (machine only) against dev's human rows (bar AUROC 0.95)
  fairness    dev's human texts rejected at the default threshold, per domain (bar: none above 2%)
              and by length
  languages   fastText language identification: the share of texts given their language, per
              file and language (bar 97% on multilingual.jsonl.zst), and what the gate declines
  lodo        leave-one-dataset-out over BiScope, Fast-DetectGPT, Glimpse, OUTFOX and M4: a whole
              stack trained on the training split without the dataset, scored on all of that
              dataset's rows (bar mean AUROC 0.85); --skip-training leaves it out
  throughput  docs/s on one core for dev texts of 2.5-3.5 KB (bar 1,000), median of --repeats
Run it on a quiet machine: the throughput figure is wall-clock.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")   # before numpy: one core means one BLAS thread too

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import detector_data  # noqa: E402
from detectors.evaluation import evaluate, leave_one_dataset_out, quality, report_scores, score_texts  # noqa: E402
from detectors.labelled import LabelledTexts, read_labelled  # noqa: E402
from detectors.stack import default_stack_folder, load_stack  # noqa: E402
from detectors.training import TrainSettings, train_stack  # noqa: E402

LODO_DATASETS = ("biscope", "fast-detect-gpt", "glimpse", "outfox", "m4")
# multilingual.jsonl.zst's domains and M4's non-English domains, as ISO 639 codes
LANGUAGE_OF = {"arabic": "ar", "bulgarian": "bg", "chinese": "zh", "indonesian": "id", "russian": "ru",
               "urdu": "ur", "news-ru": "ru", "news-id": "id", "wikipedia-de": "de", "qa-zh": "zh"}


def shares(p: np.ndarray, rows: np.ndarray, threshold: float) -> dict:
    n = int(rows.sum())
    return {"texts": n, "rejected_at_threshold": round(float((p[rows] >= threshold).mean()), 4) if n else None,
            "rejected_at_0.5": round(float((p[rows] >= 0.5).mean()), 4) if n else None}


def by_value(p: np.ndarray, rows: np.ndarray, column: np.ndarray, threshold: float) -> dict:
    return {v: shares(p, rows & (column == v), threshold) for v in sorted(set(column[rows].tolist()))}


def web(stack, validation: LabelledTexts, threshold: float) -> dict:
    """Validation pages: rates over the pages a run scores (the gate's declines are never rejected)."""
    p, _, supported = score_texts(stack, validation.texts)
    return {"pages": len(validation), "declined_by_language_gate": int((~supported).sum()),
            "overall": shares(p, supported, threshold),
            "by_source": by_value(p, supported, validation.column("domain"), threshold)}


def fairness(p: np.ndarray, dev: LabelledTexts, threshold: float) -> dict:
    human = dev.y == 0
    lengths = np.array([len(t) for t in dev.texts])
    out = {"threshold": threshold, "overall": shares(p, human, threshold),
           "by_domain": by_value(p, human, dev.column("domain"), threshold), "by_length": {}}
    for low, high in ((0, 300), (300, 500), (500, 1500), (1500, 10 ** 9)):
        out["by_length"][f"{low}-{high if high < 10 ** 9 else 'inf'}"] = shares(
            p, human & (lengths >= low) & (lengths < high), threshold)
    return out


def languages(stack, multilingual: LabelledTexts, rest: LabelledTexts, dev: LabelledTexts,
              validation: LabelledTexts) -> dict:
    """`multilingual`: multilingual.jsonl.zst; `rest`: the split's other_language rows."""
    out = {}
    identify = stack.language_identifier.identify
    other = LabelledTexts()
    other.extend(multilingual)
    other.extend(rest)
    codes, _ = identify(other.texts)
    domain = other.column("domain")
    expected = np.array([LANGUAGE_OF.get(d, "") for d in domain], dtype=object)
    got = np.asarray(codes, dtype=object)
    for name, rows in (("multilingual", other.column("dataset") == "glimpse"),
                       ("m4_other_languages", other.column("dataset") == "m4"),
                       ("hc3plus_zh", other.column("dataset") == "hc3plus-zh")):
        out[name] = {"texts": int(rows.sum()), "right": round(float((got[rows] == expected[rows]).mean()), 4),
                     "by_language": {lang: round(float((got[rows & (expected == lang)] == lang).mean()), 4)
                                     for lang in sorted(set(expected[rows].tolist()))}}
    for name, data in (("dev_english", dev), ("web_validation_english", validation)):
        codes, _ = identify(data.texts)
        out[name] = {"texts": len(data), "right": round(float(np.mean([c == "en" for c in codes])), 4)}
    return out


def throughput(stack, dev: LabelledTexts, repeats: int) -> dict:
    texts = [t for t in dev.texts if 2500 <= len(t) <= 3500][:1500]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(texts), 256):
            stack.score(texts[i:i + 256])
        rates.append(len(texts) / (time.perf_counter() - started))
    return {"docs": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts]))),
            "docs_per_second_one_core": [round(r) for r in rates], "median": round(statistics.median(rates))}


def web_out_of_fold(train: LabelledTexts, threshold: float, say) -> dict:
    """The web pages training used, scored by the folds that did not see them."""
    trained = train_stack(train, TrainSettings(), progress=lambda m: say(f"  oof: {m}"))
    rows = train.column("dataset") == detector_data.WEB_DATASET
    p = trained.oof_probability
    return {"overall": shares(p, rows, threshold), "by_source": by_value(p, rows, train.column("domain"), threshold),
            "out_of_fold": trained.report["out_of_fold"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_stack_folder())
    parser.add_argument("--out", default=None, help="Write the full report as JSON here.")
    parser.add_argument("--threshold", type=float, default=None, help="Default: the model's.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-training", action="store_true", help="Leave out web_oof and lodo (they train stacks).")
    args = parser.parse_args()
    if not (detector_data.SHARED / "detector").is_dir():
        print(f"skipped: {detector_data.SHARED} is absent (the shared data sits beside the checkout)")
        return 0
    say = lambda m: print(m, file=sys.stderr, flush=True)   # noqa: E731
    stack = load_stack(args.model)
    threshold = stack.threshold["value"] if args.threshold is None else args.threshold
    with tempfile.TemporaryDirectory(prefix="firsthand-detector-data-") as folder:
        for name, records in detector_data.split(detector_data.SHARED).items():
            detector_data.write(Path(folder, f"{name}.jsonl.zst"), records)
        read = lambda name: read_labelled([str(Path(folder, f"{name}.jsonl.zst"))])   # noqa: E731
        train, dev, validation, other = read("train"), read("dev"), read("web_validation"), read("other_language")
    report: dict = {"model": args.model, "stack": stack.version, "threshold": threshold,
                    "threshold_record": stack.threshold}
    say("web validation")
    report["web"] = web(stack, validation, threshold)
    say("dev")
    dev_scores = score_texts(stack, dev.texts)
    report["dev"] = report_scores(dev, *dev_scores)
    report["fairness"] = fairness(dev_scores[0], dev, threshold)
    say("attacks")
    attacks = read_labelled([str(detector_data.SHARED / "detector" / "attacks.jsonl.zst")])
    attacks.extend(dev.subset(dev.y == 0))
    report["attacks"] = evaluate(stack, attacks)
    say("languages, throughput")
    report["languages"] = languages(stack, read_labelled([str(detector_data.SHARED / "detector" / "multilingual.jsonl.zst")]),
                                    other, dev, validation)
    report["throughput"] = throughput(stack, dev, args.repeats)
    if not args.skip_training:
        say("web pages out of fold")
        report["web_oof"] = web_out_of_fold(train, threshold, say)
        both = LabelledTexts()
        both.extend(train)
        both.extend(dev)
        target = both.subset(np.isin(both.column("dataset"), LODO_DATASETS))
        report["lodo"] = leave_one_dataset_out(train, target, TrainSettings(), progress=say)
    summary = {
        "threshold": threshold,
        "web_validation_rejected_at_threshold": report["web"]["overall"]["rejected_at_threshold"],
        "web_validation_rejected_at_0.5": report["web"]["overall"]["rejected_at_0.5"],
        "web_validation_by_source": {k: (v["rejected_at_threshold"], v["rejected_at_0.5"])
                                     for k, v in report["web"]["by_source"].items()},
        "web_oof_by_source": {k: (v["rejected_at_threshold"], v["rejected_at_0.5"])
                              for k, v in report.get("web_oof", {}).get("by_source", {}).items()},
        "dev_auroc": report["dev"]["pooled"]["auroc"], "dev_tpr_at_1pct": report["dev"]["pooled"]["tpr_at_1pct_fpr"],
        "dev_by_dataset": {k: v["auroc"] for k, v in report["dev"]["dataset"].items()},
        "dev_tpr_at_threshold": round(float((dev_scores[0][dev.y == 1] >= threshold).mean()), 4),
        "attacks_auroc": report["attacks"]["pooled"]["auroc"],
        "lodo": {k: v["auroc"] for k, v in report.get("lodo", {}).get("datasets", {}).items()},
        "lodo_mean_auroc": report.get("lodo", {}).get("mean_auroc"),
        "dev_human_rejected_by_domain": {k: v["rejected_at_threshold"] for k, v in report["fairness"]["by_domain"].items()},
        "languages_right": {k: v["right"] for k, v in report["languages"].items()},
        "docs_per_second_one_core": report["throughput"]["median"],
    }
    report["summary"] = summary
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
