"""fastText n-gram detector: text preparation, hyperparameters, quantisation, leave-one-dataset-out.

    nice -n 10 .venv/bin/python bench/detector_ngram_sweep.py --lodo-runs default,ep10-lr0.1 \\
        --out /tmp/ngram-sweep.json --write-model /tmp/ngram-default.ftz     # ~22 min on one core

Trains on ../shared/data/detector/train.jsonl.zst and scores dev.jsonl.zst (pooled, per dataset,
per domain, per generator) and attacks.jsonl.zst (machine only, against dev's human rows). Parts
(--parts, default all):
  prep     text preparation variants (case, punctuation split) at the sweep's base params
  sweep    model settings (word n-grams, dim, epochs, lr, minCount, char n-grams) around a
           fixed base, each trained and quantised by detectors.ngram.train_ngram_model
  quant    one float model at the default params, quantised several ways (cutoff, retrain,
           dsub, qnorm): size against quality
  lodo     leave-one-dataset-out at the default params (or --lodo-runs): train on the train
           rows of three datasets, score the dev rows of the fourth
  default  the default model in detail (per group, generators, multilingual, false positives
           per domain at the pooled 1%-FPR threshold), its throughput; --write-model keeps it
Throughput is docs/s on one thread for dev texts of 2.5-3.5 KB, prepare() included.
AUROC and TPR at a fixed FPR: detectors.metrics (rank-based, numpy).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detectors import ngram  # noqa: E402
from detectors.metrics import auroc, threshold_at_fpr, tpr_at_fpr  # noqa: E402
from detectors.ngram import NgramDetector, NgramParams, fold, prepare, train_ngram_model  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "detector"
DATASETS = ("biscope", "fast-detect-gpt", "glimpse", "outfox")
ATTACK_SOURCE = {"biscope-paraphrased": "biscope", "outfox-dipper-paraphrase": "outfox",
                 "outfox-outfox-attack": "outfox"}
PREPARATIONS = {  # name -> folded text to fastText line
    "cased+punct": prepare,
    "lower+punct": lambda t: prepare(t).lower(),
    "cased": lambda t: t[:ngram.MAX_CHARS].replace("\n", " "),
    "lower": lambda t: t[:ngram.MAX_CHARS].replace("\n", " ").lower(),
}
D = NgramParams()
# The sweep is pinned to its own base (round one's starting point), not to the default, so that its
# numbers stay reproducible when the default moves; training is deterministic, so they are exact.
BASE = NgramParams(word_ngrams=2, dim=32, epoch=10, lr=0.5, min_count=2, bucket=2_000_000,
                   minn=0, maxn=0, seed=1, cutoff=100_000, retrain=False, dsub=2, qnorm=False)
SWEEP = {  # name -> params
    "base": BASE,
    "wng1": dataclasses.replace(BASE, word_ngrams=1),
    "wng3": dataclasses.replace(BASE, word_ngrams=3),
    "dim16": dataclasses.replace(BASE, dim=16),
    "dim64": dataclasses.replace(BASE, dim=64),
    "dim100": dataclasses.replace(BASE, dim=100),
    "ep5-lr0.1": dataclasses.replace(BASE, epoch=5, lr=0.1),
    "ep25-lr0.25": dataclasses.replace(BASE, epoch=25, lr=0.25),
    "ep5": dataclasses.replace(BASE, epoch=5),
    "minCount1": dataclasses.replace(BASE, min_count=1),
    "minCount5": dataclasses.replace(BASE, min_count=5),
    "char3-6": dataclasses.replace(BASE, minn=3, maxn=6),
    # round two: less training generalised better in round one
    "ep5-lr0.05": dataclasses.replace(BASE, epoch=5, lr=0.05),
    "ep3-lr0.1": dataclasses.replace(BASE, epoch=3, lr=0.1),
    "ep10-lr0.1": dataclasses.replace(BASE, epoch=10, lr=0.1),
    "ep5-lr0.1-wng3": dataclasses.replace(BASE, epoch=5, lr=0.1, word_ngrams=3),
    "ep5-lr0.1-dim16": dataclasses.replace(BASE, epoch=5, lr=0.1, dim=16),
    "ep5-lr0.1-wng3-dim16": dataclasses.replace(BASE, epoch=5, lr=0.1, word_ngrams=3, dim=16),
}
QUANT = {  # name -> quantize() arguments; None keeps the float model
    "float": None,
    "all-rows dsub2": dict(cutoff=0, retrain=False, dsub=2, qnorm=False),
    "cut200k dsub2": dict(cutoff=200_000, retrain=False, dsub=2, qnorm=False),
    "cut100k dsub2": dict(cutoff=100_000, retrain=False, dsub=2, qnorm=False),
    "cut50k dsub2": dict(cutoff=50_000, retrain=False, dsub=2, qnorm=False),
    "cut25k dsub2": dict(cutoff=25_000, retrain=False, dsub=2, qnorm=False),
    "cut10k dsub2": dict(cutoff=10_000, retrain=False, dsub=2, qnorm=False),
    "cut50k dsub1": dict(cutoff=50_000, retrain=False, dsub=1, qnorm=False),
    "cut25k dsub1": dict(cutoff=25_000, retrain=False, dsub=1, qnorm=False),
    "cut100k dsub4 qnorm": dict(cutoff=100_000, retrain=False, dsub=4, qnorm=True),
    "cut50k dsub2 retrain": dict(cutoff=50_000, retrain=True, dsub=2, qnorm=False),
}


# ------------------------------------------------------------------------------------- metrics
def quality(scores: np.ndarray, positive: np.ndarray) -> dict:
    return {"n": int(len(scores)), "machine": int(positive.sum()), "auroc": auroc(scores, positive),
            "tpr@1%": tpr_at_fpr(scores, positive, 0.01), "tpr@5%": tpr_at_fpr(scores, positive, 0.05)}


# ---------------------------------------------------------------------------------------- data
def read_rows(name: str) -> list[dict]:
    import zstandard
    path = DATA / f"{name}.jsonl.zst"
    with open(path, "rb") as f:
        reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        return [json.loads(line) for line in io.TextIOWrapper(reader, encoding="utf-8")]


class Split:
    """Rows of one file with folded texts and, per preparation variant, fastText lines (cached)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.folded = [fold(r["text"]) for r in rows]
        self.machine = np.array([r["label"] == "machine" for r in rows])
        self._lines: dict[str, list[str]] = {}

    def lines(self, prep: str) -> list[str]:
        if prep not in self._lines:
            self._lines[prep] = [PREPARATIONS[prep](t) for t in self.folded]
        return self._lines[prep]

    def column(self, key: str) -> np.ndarray:
        return np.array([r[key] for r in self.rows])


def evaluate(detector: NgramDetector, dev: Split, attacks: Split, prep: str) -> dict:
    dev_scores = detector.logits_prepared(dev.lines(prep))
    attack_scores = detector.logits_prepared(attacks.lines(prep))
    human = ~dev.machine
    result = {"dev": quality(dev_scores, dev.machine), "dataset": {}, "domain": {}, "attack_set": {}}
    datasets, domains = dev.column("dataset"), dev.column("domain")
    for name in DATASETS:
        mask = datasets == name
        result["dataset"][name] = quality(dev_scores[mask], dev.machine[mask])
    for name in sorted(set(domains)):
        mask = domains == name
        result["domain"][name] = quality(dev_scores[mask], dev.machine[mask])
    both = np.concatenate([dev_scores[human], attack_scores])
    is_attack = np.concatenate([np.zeros(human.sum(), bool), np.ones(len(attack_scores), bool)])
    result["attacks"] = quality(both, is_attack)
    attack_sets = attacks.column("dataset")
    for name, source in ATTACK_SOURCE.items():   # each attack set against the humans of its source
        own = human & (datasets == source)
        scores = np.concatenate([dev_scores[own], attack_scores[attack_sets == name]])
        labels = np.concatenate([np.zeros(own.sum(), bool), np.ones((attack_sets == name).sum(), bool)])
        result["attack_set"][name] = quality(scores, labels)
    result["_scores"] = (dev_scores, attack_scores)
    return result


def throughput(detector: NgramDetector, dev: Split, repeats: int = 3) -> dict:
    docs = [t for t in dev.folded if 2500 <= len(t) <= 3500][:2000]
    best = {"features": np.inf, "prepare": np.inf}
    for _ in range(repeats):   # best of a few: the machine is shared
        start = time.perf_counter()
        lines = [prepare(t) for t in docs]
        best["prepare"] = min(best["prepare"], time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(0, len(docs), 500):
            detector.features(docs[i:i + 500])
        best["features"] = min(best["features"], time.perf_counter() - start)
    del lines
    return {"docs": len(docs), "mean_chars": float(np.mean([len(t) for t in docs])),
            "docs_per_s": len(docs) / best["features"], "prepare_us_per_doc": 1e6 * best["prepare"] / len(docs)}


def train_and_score(train: Split, dev: Split, attacks: Split, params: NgramParams, prep: str,
                    workdir: str, rows: np.ndarray | None = None) -> tuple[NgramDetector, dict]:
    lines, labels = train.lines(prep), train.machine.astype(int)
    if rows is not None:
        lines, labels = [lines[i] for i in rows], labels[rows]
    path = os.path.join(workdir, "model.ftz")
    start = time.perf_counter()
    train_ngram_model(lines, labels, path, params, prepared=True)
    seconds = time.perf_counter() - start
    detector = NgramDetector.load(path)
    result = evaluate(detector, dev, attacks, prep)
    result.update(train_s=seconds, size_bytes=os.path.getsize(path), params=dataclasses.asdict(params), prep=prep)
    return detector, result


# ------------------------------------------------------------------------------------- printing
def fmt(x: float) -> str:
    return "  —  " if x != x else f"{x:.3f}"


def print_table(title: str, results: dict[str, dict], speed: dict[str, float] | None = None) -> None:
    print(f"\n### {title}\n")
    head = ["run", "MB", "train s", "dev AUROC", "TPR@1%", "TPR@5%", "attack AUROC", "attack TPR@1%",
            *[f"{d} AUROC" for d in DATASETS]] + (["docs/s"] if speed else [])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, r in results.items():
        cells = [name, f"{r['size_bytes'] / 1e6:.2f}", f"{r['train_s']:.0f}", fmt(r["dev"]["auroc"]),
                 fmt(r["dev"]["tpr@1%"]), fmt(r["dev"]["tpr@5%"]), fmt(r["attacks"]["auroc"]),
                 fmt(r["attacks"]["tpr@1%"]), *[fmt(r["dataset"][d]["auroc"]) for d in DATASETS]]
        if speed:
            cells.append(f"{speed[name]:,.0f}")
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


def print_groups(title: str, groups: dict[str, dict]) -> None:
    print(f"\n{title}\n\n| group | n | machine | AUROC | TPR@1% | TPR@5% |\n|---|---|---|---|---|---|")
    for name, q in groups.items():
        print(f"| {name} | {q['n']} | {q['machine']} | {fmt(q['auroc'])} | {fmt(q['tpr@1%'])} | {fmt(q['tpr@5%'])} |")


# ---------------------------------------------------------------------------------------- parts
def part_prep(train, dev, attacks, workdir, out):
    results, speed = {}, {}
    for prep in PREPARATIONS:
        detector, results[prep] = train_and_score(train, dev, attacks, BASE, prep, workdir)
        speed[prep] = prep_throughput(detector, dev, prep)
        print(f"prep {prep}: dev {results[prep]['dev']['auroc']:.4f}", file=sys.stderr)
    print_table("Text preparation (the sweep's base params)", results, speed)
    out["prep"] = strip(results)


def prep_throughput(detector: NgramDetector, dev: Split, prep: str) -> float:
    docs = [t for t in dev.folded if 2500 <= len(t) <= 3500][:2000]
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        detector.logits_prepared([PREPARATIONS[prep](t) for t in docs])
        best = min(best, time.perf_counter() - start)
    return len(docs) / best


def part_sweep(train, dev, attacks, workdir, out, runs: list[str]):
    results, speed = {}, {}
    for name in runs:
        params = SWEEP[name]
        detector, results[name] = train_and_score(train, dev, attacks, params, "cased+punct", workdir)
        speed[name] = throughput(detector, dev, repeats=2)["docs_per_s"]
        print(f"sweep {name}: dev {results[name]['dev']['auroc']:.4f} "
              f"attacks {results[name]['attacks']['auroc']:.4f} {results[name]['train_s']:.0f}s", file=sys.stderr)
    print_table("Model settings (cased+punct; each quantised: "
                f"cutoff {BASE.cutoff}, retrain {BASE.retrain}, dsub {BASE.dsub}, qnorm {BASE.qnorm})", results, speed)
    out["sweep"] = strip(results)


def part_quant(train, dev, attacks, workdir, out):
    """One float model, quantised several ways (fastText calls made here, as train_ngram_model makes them)."""
    import fasttext
    train_file = os.path.join(workdir, "train.txt")
    order = np.random.default_rng(D.seed).permutation(len(train.rows))
    lines = train.lines("cased+punct")
    with open(train_file, "w", encoding="utf-8") as f:
        f.writelines(f"{ngram.MACHINE if train.machine[i] else ngram.HUMAN} {lines[i]}\n" for i in order)
    start = time.perf_counter()
    with ngram._zero_filled_allocations():
        model = fasttext.train_supervised(input=train_file, thread=1, verbose=0, **D.fasttext_args())
    train_s = time.perf_counter() - start
    float_path = os.path.join(workdir, "float.bin")
    model.save_model(float_path)
    results, speed = {}, {}
    for name, args in QUANT.items():
        path, seconds = float_path, 0.0
        if args is not None:
            model = fasttext.load_model(float_path)   # a loaded model forgets lr (and seed: retrain uses 0)
            start = time.perf_counter()
            model.f.quantize(train_file, False, args["cutoff"], args["retrain"], D.epoch, D.lr, 1, 0,
                             args["dsub"], args["qnorm"])
            seconds = time.perf_counter() - start
            path = os.path.join(workdir, "q.ftz")
            model.save_model(path)
        detector = NgramDetector.load(path)
        r = evaluate(detector, dev, attacks, "cased+punct")
        r.update(train_s=train_s + seconds, size_bytes=os.path.getsize(path), quantize=args)
        results[name] = r
        speed[name] = throughput(detector, dev, repeats=2)["docs_per_s"]
        print(f"quant {name}: {r['size_bytes'] / 1e6:.2f} MB dev {r['dev']['auroc']:.4f}", file=sys.stderr)
    print_table("Quantisation of one float model (train s = float training + quantisation)", results, speed)
    out["quant"] = strip(results)


def part_lodo(train, dev, attacks, workdir, out, runs: list[str]):
    for run in runs:
        lodo(train, dev, workdir, out, run)


def lodo(train, dev, workdir, out, run: str):
    """Also: thresholds set at 1%/5% FPR on the held-in datasets' dev humans, applied to the left-out
    dataset (its false-positive rate is what a deployment without its kind of text would see)."""
    params = D if run == "default" else SWEEP[run]
    train_sets, dev_sets = train.column("dataset"), dev.column("dataset")
    print(f"\n### Leave one dataset out ({run} params)\n\n| left out | train rows | dev rows | AUROC | "
          f"TPR@1% | TPR@5% | in-distribution AUROC | FPR / TPR at the held-in 1% threshold | "
          f"at the held-in 5% threshold |\n|---|---|---|---|---|---|---|---|---|")
    rows_out, in_dist = {}, (out.get("default", {}) if run == "default" else {}).get("dataset", {})
    lines = train.lines("cased+punct")
    for name in DATASETS:
        keep = np.flatnonzero(train_sets != name)
        path = os.path.join(workdir, "lodo.ftz")
        train_ngram_model([lines[i] for i in keep], train.machine[keep].astype(int), path, params, prepared=True)
        scores = NgramDetector.load(path).logits_prepared(dev.lines("cased+punct"))
        out_mask = dev_sets == name
        q = quality(scores[out_mask], dev.machine[out_mask])
        held_in = ~out_mask
        for fpr in (0.01, 0.05):
            t = threshold_at_fpr(scores[held_in], dev.machine[held_in], fpr)
            q[f"transfer@{fpr:.0%}"] = {"fpr": float(np.mean(scores[out_mask & ~dev.machine] > t)),
                                        "tpr": float(np.mean(scores[out_mask & dev.machine] > t))}
        rows_out[name] = q
        seen = in_dist.get(name, {}).get("auroc", float("nan"))
        t1, t5 = q["transfer@1%"], q["transfer@5%"]
        print(f"| {name} | {len(keep)} | {out_mask.sum()} | {fmt(q['auroc'])} | {fmt(q['tpr@1%'])} | "
              f"{fmt(q['tpr@5%'])} | {fmt(seen)} | {t1['fpr']:.3f} / {t1['tpr']:.3f} | "
              f"{t5['fpr']:.3f} / {t5['tpr']:.3f} |")
        sys.stdout.flush()
    mean = float(np.mean([q["auroc"] for q in rows_out.values()]))
    print(f"| mean | | | {mean:.3f} | | | | | |")
    out.setdefault("lodo", {})[run] = {"params": dataclasses.asdict(params), "datasets": rows_out, "mean_auroc": mean}


def part_default(train, dev, attacks, workdir, out, write_model: str | None):
    detector, r = train_and_score(train, dev, attacks, D, "cased+punct", workdir)
    path = os.path.join(workdir, "model.ftz")
    again = os.path.join(workdir, "again.ftz")
    train_ngram_model(train.lines("cased+punct"), train.machine.astype(int), again, D, prepared=True)
    identical = Path(path).read_bytes() == Path(again).read_bytes()
    if write_model:
        shutil.copyfile(path, write_model)
    speed = throughput(detector, dev)
    start = time.perf_counter()
    NgramDetector.load(path)
    load_s = time.perf_counter() - start
    dev_scores, attack_scores = r.pop("_scores")
    print(f"\n### Default model\n\nparams: {json.dumps(r['params'])}\n"
          f"size {r['size_bytes']:,} bytes, sha256 {detector.sha256}, version {detector.version}, "
          f"train {r['train_s']:.0f} s, load {load_s * 1e3:.0f} ms, retrained bit-identical: {identical}\n"
          f"throughput: {speed['docs_per_s']:,.0f} docs/s on one thread ({speed['docs']} docs, "
          f"mean {speed['mean_chars']:.0f} chars; prepare {speed['prepare_us_per_doc']:.0f} us/doc)")
    print_groups("Dev, pooled and per dataset", {"pooled": r["dev"], **r["dataset"]})
    print_groups("Dev per domain", r["domain"])
    print_groups("Attacks (pooled: against all dev humans; per set: against its source's dev humans)",
                 {"pooled": r["attacks"], **r["attack_set"]})
    # recall per generator and false positives per group at the pooled dev thresholds
    thresholds = {f: threshold_at_fpr(dev_scores, dev.machine, f) for f in (0.01, 0.05)}
    print("\nAt the pooled dev thresholds (1% / 5% FPR): recall per generator, false-positive rate per "
          "human group\n\n| group | n | flagged @1% | flagged @5% |\n|---|---|---|---|")
    groups = defaultdict(list)
    for i, row in enumerate(dev.rows):
        key = f"machine {row['generator']}" if dev.machine[i] else f"human {row['dataset']}/{row['domain']}"
        groups[key].append(dev_scores[i])
    for i, row in enumerate(attacks.rows):
        groups[f"attack {row['dataset']} {row['generator']}"].append(attack_scores[i])
    flagged = {}
    for key in sorted(groups):
        s = np.array(groups[key])
        flagged[key] = {f"{f:.0%}": float(np.mean(s > t)) for f, t in thresholds.items()}
        print(f"| {key} | {len(s)} | {flagged[key]['1%']:.3f} | {flagged[key]['5%']:.3f} |")
    multi = Split(read_rows("multilingual")) if (DATA / "multilingual.jsonl.zst").exists() else None
    if multi is not None:
        scores = detector.logits_prepared(multi.lines("cased+punct"))
        langs = multi.column("domain")
        per = {"pooled": quality(scores, multi.machine)}
        for lang in sorted(set(langs)):
            per[lang] = quality(scores[langs == lang], multi.machine[langs == lang])
        print_groups("Multilingual (not in training; domain column)", per)
        r["multilingual"] = per
    r.update(sha256=detector.sha256, version=detector.version, throughput=speed, load_s=load_s,
             retrained_identical=identical, flagged_at_pooled_thresholds=flagged)
    out["default"] = r


def strip(results: dict) -> dict:
    return {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="default,lodo,prep,sweep,quant")
    parser.add_argument("--runs", default=None, help="comma-separated subset of the sweep's runs")
    parser.add_argument("--lodo-runs", default="default", help="params for leave-one-dataset-out: "
                        "'default' and/or names of sweep runs, comma-separated")
    parser.add_argument("--out", default=None, help="JSON with every number")
    parser.add_argument("--write-model", default=None, help="copy the default model here")
    args = parser.parse_args()
    if not (DATA / "train.jsonl.zst").exists():
        print(f"detector_ngram_sweep: shared data not found ({DATA}); this benchmark reads "
              "../shared/data/detector (see its README.md)", file=sys.stderr)
        sys.exit(2)
    runs = args.runs.split(",") if args.runs else list(SWEEP)
    unknown = set(runs + args.lodo_runs.split(",")) - set(SWEEP) - {"default"}
    if unknown:
        parser.error(f"unknown runs: {', '.join(sorted(unknown))}; the sweep has {', '.join(SWEEP)}")
    start = time.perf_counter()
    train, dev, attacks = Split(read_rows("train")), Split(read_rows("dev")), Split(read_rows("attacks"))
    print(f"data: train {len(train.rows)}, dev {len(dev.rows)}, attacks {len(attacks.rows)} rows "
          f"({time.perf_counter() - start:.0f} s to read and fold)", file=sys.stderr)
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="ngram-sweep-") as workdir:
        for part in args.parts.split(","):
            if part == "default":
                part_default(train, dev, attacks, workdir, out, args.write_model)
            elif part == "sweep":
                part_sweep(train, dev, attacks, workdir, out, runs)
            elif part == "lodo":
                part_lodo(train, dev, attacks, workdir, out, args.lodo_runs.split(","))
            else:
                {"prep": part_prep, "quant": part_quant}[part](
                    train, dev, attacks, workdir, out)
            if args.out:
                Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(f"\ntotal {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
