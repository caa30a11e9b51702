"""The detector stack against issue 4's bars, on ../shared/data/detector.

    .venv/bin/python bench/detector_quality.py --out /tmp/detector-quality.json     # ~15 min on 2 cores

Measures the stack in --model (default: the one shipped in the package):
  dev         pooled AUROC and TPR at 1% FPR (bars 0.97 / 0.80), per dataset/domain/generator
  attacks     attacks.jsonl.zst (machine only) against dev's human rows (bar AUROC 0.95)
  lodo        leave-one-dataset-out: a whole stack trained on train.jsonl.zst without one dataset,
              scored on that dataset's dev rows (bar mean AUROC 0.90); --skip-lodo leaves it out
  fairness    human false-positive rates at the decision threshold (--threshold, the pipeline's
              default 0.9) and at the pooled 1%-FPR threshold, per domain and by text length:
              student essays (OUTFOX) are the closest available proxy for young and
              non-native writers
  languages   multilingual.jsonl.zst: how many texts the language gate declines, and the AUROC
              on the ones it lets through
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
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detectors.evaluation import (evaluate, leave_one_dataset_out, quality, report_scores,  # noqa: E402
                                  score_texts)
from detectors.labelled import read_labelled  # noqa: E402
from detectors.metrics import threshold_at_fpr  # noqa: E402
from detectors.stack import default_stack_folder, load_stack  # noqa: E402
from detectors.training import TrainSettings  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "detector"


def fairness(p: np.ndarray, dev, threshold) -> dict:
    y = dev.y
    pooled = threshold_at_fpr(p, y, 0.01)
    human = y == 0
    domain = dev.column("domain")
    lengths = np.array([len(t) for t in dev.texts])
    out = {"threshold": threshold, "pooled_1pct_threshold": round(float(pooled), 4),
           "human_fpr_overall": round(float((p[human] >= threshold).mean()), 4), "by_domain": {}, "by_length": {}}
    for value in sorted(set(domain.tolist())):
        rows = human & (domain == value)
        if rows.any():
            out["by_domain"][value] = {"humans": int(rows.sum()),
                                       "fpr_at_threshold": round(float((p[rows] >= threshold).mean()), 4),
                                       "fpr_at_pooled_1pct": round(float((p[rows] > pooled).mean()), 4)}
    for low, high in ((0, 200), (200, 500), (500, 1500), (1500, 10**9)):
        rows = human & (lengths >= low) & (lengths < high)
        if rows.any():
            out["by_length"][f"{low}-{high if high < 10**9 else 'inf'}"] = {
                "humans": int(rows.sum()), "fpr_at_threshold": round(float((p[rows] >= threshold).mean()), 4),
                "fpr_at_pooled_1pct": round(float((p[rows] > pooled).mean()), 4)}
    return out


def languages(stack) -> dict:
    data = read_labelled([str(DATA / "multilingual.jsonl.zst")])
    p, _, supported = score_texts(stack, data.texts)
    y = data.y
    domain = data.column("domain")
    return {"rows": len(data), "declined_by_language_gate": int((~supported).sum()),
            "declined_by_language": {v: int((~supported[domain == v]).sum()) for v in sorted(set(domain.tolist()))},
            "auroc_on_accepted": quality(p[supported], y[supported])["auroc"] if supported.any() else None}


def throughput(stack, dev, repeats: int) -> dict:
    texts = [t for t in dev.texts if 2500 <= len(t) <= 3500][:1500]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(texts), 256):
            stack.score(texts[i:i + 256])
        rates.append(len(texts) / (time.perf_counter() - started))
    return {"docs": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts]))),
            "docs_per_second_one_core": [round(r) for r in rates], "median": round(statistics.median(rates))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_stack_folder())
    parser.add_argument("--out", default=None, help="Write the full report as JSON here.")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-lodo", action="store_true")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (the shared data sits beside the checkout)")
        return 0
    stack = load_stack(args.model)
    say = lambda m: print(m, file=sys.stderr, flush=True)   # noqa: E731
    dev = read_labelled([str(DATA / "dev.jsonl.zst")])
    report: dict = {"model": args.model, "stack": stack.version}
    say("dev")
    dev_scores = score_texts(stack, dev.texts)
    report["dev"] = report_scores(dev, *dev_scores)
    say("attacks")
    attacks = read_labelled([str(DATA / "attacks.jsonl.zst")])
    attacks.extend(dev.subset(dev.y == 0))
    report["attacks"] = evaluate(stack, attacks)
    say("fairness, languages, throughput")
    report["fairness"] = fairness(dev_scores[0], dev, args.threshold)
    report["languages"] = languages(stack)
    report["throughput"] = throughput(stack, dev, args.repeats)
    if not args.skip_lodo:
        train = read_labelled([str(DATA / "train.jsonl.zst")])
        report["lodo"] = leave_one_dataset_out(train, dev, TrainSettings(), progress=say)
    summary = {"dev_auroc": report["dev"]["pooled"]["auroc"], "dev_tpr_at_1pct": report["dev"]["pooled"]["tpr_at_1pct_fpr"],
               "attacks_auroc": report["attacks"]["pooled"]["auroc"],
               "lodo_mean_auroc": report.get("lodo", {}).get("mean_auroc"),
               "lodo": {k: v["auroc"] for k, v in report.get("lodo", {}).get("datasets", {}).items()},
               "docs_per_second_one_core": report["throughput"]["median"],
               "human_fpr_at_threshold": report["fairness"]["human_fpr_overall"],
               "essay_fpr_at_threshold": report["fairness"]["by_domain"].get("essay", {}).get("fpr_at_threshold"),
               "dev_ece_balanced": report["dev"]["pooled"]["ece"],
               "languages_declined": f"{report['languages']['declined_by_language_gate']}/{report['languages']['rows']}"}
    report["summary"] = summary
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
