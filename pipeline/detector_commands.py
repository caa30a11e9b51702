"""`firsthand train-detector` and `firsthand evaluate`: no Beam, plain files in and out."""
from __future__ import annotations

import argparse
import json
import sys
import time

from pipeline.errors import ConfigError


def _progress(quiet: bool):
    started = time.perf_counter()

    def say(message: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - started:7.1f}s] {message}", file=sys.stderr, flush=True)
    return say


def _load(paths: list[str], limit: int | None, say):
    from detectors.labelled import read_labelled
    try:
        data = read_labelled(paths, limit=limit)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(str(error)) from None
    say(f"read {data.read} rows from {len(paths)} file(s): {len(data)} usable, {data.bad} bad")
    for problem in data.problems:
        say(f"  skipped {problem}")
    return data


def _need_both_labels(data, what: str) -> None:
    if len(set(data.labels)) < 2:
        raise ConfigError(f"{what} must hold both human and machine rows with text "
                          f"({len(data)} usable rows, labels {sorted(set(data.labels))})")


def _read(paths: list[str], limit: int | None, say):
    data = _load(paths, limit, say)
    _need_both_labels(data, ", ".join(paths))
    return data


def _settings(args):
    from detectors.training import TrainSettings
    from detectors.ngram import NgramParams
    if args.folds < 2:
        raise ConfigError(f"--folds must be 2 or more, got {args.folds}")
    if args.ngram_epochs < 1 or args.l2 < 0:
        raise ConfigError(f"--ngram-epochs must be at least 1 and --l2 at least 0, got {args.ngram_epochs} "
                          f"and {args.l2}")
    if args.ngram_buckets < 1000:
        raise ConfigError(f"--ngram-buckets must be at least 1000, got {args.ngram_buckets}")
    params = "off" if args.no_ngram else NgramParams(
        epoch=args.ngram_epochs, bucket=args.ngram_buckets, cutoff=min(NgramParams.cutoff, args.ngram_buckets // 10))
    return TrainSettings(folds=args.folds, l2=args.l2, ngram=params)


def _data_args(parser: argparse.ArgumentParser, data_help: str, limit_help: str) -> None:
    """--data, --limit and --quiet: what both commands read and how they report."""
    parser.add_argument("--data", nargs="+", required=True, help=data_help)
    parser.add_argument("--limit", type=int, default=None, help=limit_help)
    parser.add_argument("--quiet", action="store_true", help="No progress lines on stderr.")


def _training_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folds", type=int, default=5, help="Folds for out-of-fold scores (default 5).")
    parser.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic stacker (default 1).")
    parser.add_argument("--ngram-epochs", type=int, default=10, help="fastText epochs (default 10).")
    parser.add_argument("--ngram-buckets", type=int, default=2_000_000,
                        help="fastText hash buckets for word bigrams (default 2,000,000; fewer for small data). "
                             "Quantisation keeps the 100,000 (at most a tenth of the buckets) largest rows.")
    parser.add_argument("--no-ngram", action="store_true",
                        help="Leave fastText out: the stack uses the residue, lexicon and style features only.")


def cmd_train_detector(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="firsthand train-detector", allow_abbrev=False,
        description="Train the detector stack (fastText n-grams + residue, lexicon and style features, "
                    "a logistic stacker on out-of-fold scores, isotonic calibration) from labelled JSON "
                    "Lines ({\"text\": ..., \"label\": \"human\"|\"machine\"}, optional dataset/domain/"
                    "generator; plain, .gz or .zst) and write it to a folder for `firsthand run "
                    "--detector-model`.")
    _data_args(parser, "Labelled JSON Lines files.", "Use only the first N rows.")
    parser.add_argument("--out", required=True, help="Local folder to write stack.json, ngram.ftz and MODEL_CARD.md "
                        "(copy it to a bucket for --detector-model gs://...).")
    _training_args(parser)
    args = parser.parse_args(argv)
    say = _progress(args.quiet)
    settings = _settings(args)
    data = _read(args.data, args.limit, say)
    from detectors.training import model_card, train_stack, write_stack
    try:
        trained = train_stack(data, settings, progress=say)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    about = {"training_files": args.data, "training_rows": len(data),
             "datasets": sorted(set(data.dataset)), "out_of_fold": trained.report["out_of_fold"]}
    write_stack(trained, args.out, about, model_card(trained, data, args.data))
    oof = trained.report["out_of_fold"]
    print(f"wrote {args.out}: out-of-fold AUROC {oof['auroc']:.4f}, TPR at 1% FPR {oof['tpr_at_1pct_fpr']:.4f}, "
          f"ECE {oof['ece']:.4f} on {len(data)} rows")
    return 0


def cmd_evaluate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="firsthand evaluate", allow_abbrev=False,
        description="Score labelled JSON Lines with a trained detector stack: AUROC, TPR at 1%% and 5%% "
                    "FPR, calibration error, pooled and per dataset, domain and generator, and docs/s. "
                    "With --lodo-train, also leave-one-dataset-out: for each dataset of --data, train "
                    "on --lodo-train without it and score it.")
    _data_args(parser, "Labelled JSON Lines files to score.", "Use only the first N rows of each input.")
    parser.add_argument("--human-from", nargs="+", default=[],
                        help="Add only the human rows of these files (e.g. attacks, which are machine "
                             "only, against dev's human rows).")
    parser.add_argument("--model", default=None, help="Stack folder (default: the model shipped with firsthand).")
    parser.add_argument("--lodo-train", nargs="+", default=[], help="Training files for leave-one-dataset-out.")
    parser.add_argument("--json", default=None, help="Also write the full report to this JSON file.")
    _training_args(parser)
    args = parser.parse_args(argv)
    say = _progress(args.quiet)
    from detectors.evaluation import evaluate, leave_one_dataset_out
    from detectors.stack import ModelFileError, default_stack_folder, load_stack
    settings = _settings(args) if args.lodo_train else None   # bad training options fail before any work
    data = _read_with_humans(args, say)
    folder = args.model or default_stack_folder()
    try:
        stack = load_stack(folder)
    except ModelFileError as error:
        raise ConfigError(str(error)) from None
    say(f"scoring {len(data)} rows with {folder}")
    report = {"model": folder, "data": args.data, "human_from": args.human_from,
              "evaluation": evaluate(stack, data, progress=say)}
    if args.lodo_train:
        train = _read(args.lodo_train, args.limit, say)
        try:
            report["leave_one_dataset_out"] = leave_one_dataset_out(train, data, settings, progress=say)
        except ValueError as error:
            raise ConfigError(f"leave-one-dataset-out: {error}") from None
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return 0


def _read_with_humans(args, say):
    if not args.human_from:
        return _read(args.data, args.limit, say)
    data = _load(args.data, args.limit, say)
    extra = _load(args.human_from, args.limit, say)
    human = extra.subset(extra.y == 0)
    data.extend(human)
    say(f"{len(data)} rows: {args.data} with the {len(human)} human rows of {args.human_from}")
    _need_both_labels(data, "the rows to score (--data and the human rows of --human-from)")
    return data


def _fmt(value) -> str:
    return "   -  " if value is None else f"{value:.4f}"


def format_report(report: dict) -> str:
    ev = report["evaluation"]
    lines = [f"model {report['model']}", f"{'group':<34}{'rows':>7}{'AUROC':>8}{'TPR@1%':>8}{'TPR@5%':>8}"
             f"{'ECE':>8}{'FPR@t':>8}"]
    p = ev["pooled"]
    lines.append(f"{'pooled':<34}{p['rows']:>7}{_fmt(p['auroc']):>8}{_fmt(p['tpr_at_1pct_fpr']):>8}"
                 f"{_fmt(p['tpr_at_5pct_fpr']):>8}{_fmt(p['ece']):>8}{'0.01':>8}")
    for field in ("dataset", "domain", "generator"):
        for value, q in ev[field].items():
            lines.append(f"{(field + ' ' + value)[:33]:<34}{q['rows']:>7}{_fmt(q['auroc']):>8}"
                         f"{_fmt(q['tpr_at_1pct_fpr']):>8}{_fmt(q['tpr_at_5pct_fpr']):>8}{_fmt(q['ece']):>8}"
                         f"{_fmt(q['false_positive_rate_at_pooled_threshold']):>8}")
    lines.append(f"FPR@t: human rows above the pooled 1%-FPR threshold "
                 f"({ev['pooled_threshold_at_1pct_fpr']}); throughput {ev['docs_per_second_one_process']} docs/s "
                 f"on one process; {ev['declined_by_language_gate']} rows would get no probability in a run "
                 f"(language gate)")
    lodo = report.get("leave_one_dataset_out")
    if lodo:
        lines.append("leave-one-dataset-out AUROC: " + ", ".join(
            f"{name} {_fmt(q['auroc'])}" for name, q in lodo["datasets"].items()) + f"; mean {_fmt(lodo['mean_auroc'])}")
    return "\n".join(lines)
