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


def _data_args(parser: argparse.ArgumentParser, data_help: str, limit_help: str, required: bool = True) -> None:
    """--data, --limit and --quiet: what both commands read and how they report."""
    parser.add_argument("--data", nargs="+", required=required, default=[], help=data_help)
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
    parser.add_argument("--validation", nargs="+", default=[],
                        help="Labelled JSON Lines whose human rows (never trained on) choose the default reject "
                             "threshold: the lowest at which at most --max-fpr of them are rejected. Give texts "
                             "like the corpus you will filter (for web crawls: human web pages). Without it the "
                             "default threshold is 0.9.")
    parser.add_argument("--max-fpr", type=float, default=0.01,
                        help="Share of --validation's human texts the default threshold may reject (default 0.01).")
    _training_args(parser)
    args = parser.parse_args(argv)
    say = _progress(args.quiet)
    settings = _settings(args)
    if not 0.0 < args.max_fpr < 1.0:
        raise ConfigError(f"--max-fpr must be in (0, 1), got {args.max_fpr}")
    data = _read(args.data, args.limit, say)
    validation = _load(args.validation, None, say) if args.validation else None
    if validation is not None and not (validation.y == 0).any():
        raise ConfigError(f"--validation {' '.join(args.validation)} holds no human rows to choose a threshold on")
    from detectors.training import model_card, train_stack, validation_threshold, write_stack
    try:
        trained = train_stack(data, settings, progress=say)
        threshold = None
        if validation is not None:
            say(f"choosing the threshold on {int((validation.y == 0).sum())} human rows of {args.validation}")
            threshold = validation_threshold(trained.stack(), validation, args.max_fpr, args.validation)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    about = {"training_files": args.data, "training_rows": len(data),
             "datasets": sorted(set(data.dataset)), "out_of_fold": trained.report["out_of_fold"]}
    write_stack(trained, args.out, about, model_card(trained, data, args.data, threshold), threshold)
    oof = trained.report["out_of_fold"]
    print(f"wrote {args.out}: out-of-fold AUROC {oof['auroc']:.4f}, TPR at 1% FPR {oof['tpr_at_1pct_fpr']:.4f}, "
          f"ECE {oof['ece']:.4f} on {len(data)} rows"
          + (f"; default threshold {threshold['value']} ({threshold['fpr']:.2%} of {threshold['human_texts']} "
             f"validation human texts at or above it)" if threshold else ""))
    return 0


def cmd_evaluate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="firsthand evaluate", allow_abbrev=False,
        description="Score labelled JSON Lines with a trained detector stack: AUROC, TPR at 1%% and 5%% "
                    "FPR, calibration error, pooled and per dataset, domain and generator, and docs/s. "
                    "With --lodo-train, also leave-one-dataset-out: for each dataset of --data, train "
                    "on --lodo-train without it and score it.")
    _data_args(parser, "Labelled JSON Lines files to score.", "Use only the first N rows of each input.",
               required=False)
    parser.add_argument("--human", nargs="+", default=[],
                        help="Files of human-written text only (JSON Lines with `text`; a `label` is optional, "
                             "`dataset` names the source): report the share a run would reject at the "
                             "threshold and at 0.5, per source and per identified language.")
    parser.add_argument("--threshold", type=float, default=None,
                        help="The reject threshold for --human (default: the model's, as `firsthand run` uses).")
    parser.add_argument("--human-from", nargs="+", default=[],
                        help="Add only the human rows of these files (e.g. attacks, which are machine "
                             "only, against dev's human rows).")
    parser.add_argument("--model", default=None, help="Stack folder (default: the model shipped with firsthand).")
    parser.add_argument("--lodo-train", nargs="+", default=[], help="Training files for leave-one-dataset-out.")
    parser.add_argument("--json", default=None, help="Also write the full report to this JSON file.")
    _training_args(parser)
    args = parser.parse_args(argv)
    say = _progress(args.quiet)
    if not args.data and not args.human:
        raise ConfigError("give --data (labelled files) or --human (human-only files), or both")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise ConfigError(f"--threshold must be in (0, 1), got {args.threshold}")
    if args.lodo_train and not args.data:
        raise ConfigError("--lodo-train needs --data: the labelled rows each left-out dataset is scored on")
    from detectors.evaluation import evaluate, human_rejections, leave_one_dataset_out
    from detectors.stack import ModelFileError, default_stack_folder, load_stack
    settings = _settings(args) if args.lodo_train else None   # bad training options fail before any work
    data = _read_with_humans(args, say) if args.data else None
    human = _read_human(args.human, args.limit, say) if args.human else None
    folder = args.model or default_stack_folder()
    try:
        stack = load_stack(folder)
    except ModelFileError as error:
        raise ConfigError(str(error)) from None
    report: dict = {"model": folder, "data": args.data, "human_from": args.human_from, "human": args.human}
    if data is not None:
        say(f"scoring {len(data)} rows with {folder}")
        report["evaluation"] = evaluate(stack, data, progress=say)
    if human is not None:
        threshold = stack.threshold["value"] if args.threshold is None else args.threshold
        say(f"scoring {len(human)} human rows with {folder} at threshold {threshold}")
        report["human_rejections"] = human_rejections(stack, human, threshold, progress=say)
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


def _read_human(paths: list[str], limit: int | None, say):
    """The human rows of human-only files; a row without `dataset` is grouped under its file's name."""
    import os
    from detectors.labelled import LabelledTexts, read_labelled
    out = LabelledTexts()
    for path in paths:
        try:
            part = read_labelled([path], limit=limit, default_label="human")
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(str(error)) from None
        machine = int(part.y.sum())
        say(f"read {part.read} rows from {path}: {len(part) - machine} human, {machine} labelled machine "
            f"(left out), {part.bad} bad")
        part = part.subset(part.y == 0)
        part.dataset = [os.path.basename(path) if d == "unknown" else d for d in part.dataset]
        out.extend(part)
    if not out.texts:
        raise ConfigError(f"--human {' '.join(paths)}: no human rows with text")
    return out


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


def format_human(human: dict) -> list[str]:
    lines = [f"human texts rejected at the threshold {human['threshold']} and at 0.5 (of those scored)",
             f"{'group':<44}{'texts':>7}{'scored':>8}{'at t':>8}{'at 0.5':>8}"]
    rows = [("overall", human["overall"])] + [(f"source {k}", v) for k, v in human["by_source"].items()] \
        + [(f"language {k}", v) for k, v in human["by_language"].items()]
    for name, q in rows:
        lines.append(f"{name[:43]:<44}{q['texts']:>7}{q['scored']:>8}{_fmt(q['rejected_at_threshold']):>8}"
                     f"{_fmt(q['rejected_at_0.5']):>8}")
    return lines


def format_report(report: dict) -> str:
    lines = [f"model {report['model']}"]
    if "evaluation" in report:
        lines += _format_evaluation(report)
    if "human_rejections" in report:
        lines += format_human(report["human_rejections"])
    return "\n".join(lines)


def _format_evaluation(report: dict) -> list[str]:
    ev = report["evaluation"]
    lines = [f"{'group':<34}{'rows':>7}{'AUROC':>8}{'TPR@1%':>8}{'TPR@5%':>8}{'ECE':>8}{'FPR@t':>8}"]
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
    return lines
