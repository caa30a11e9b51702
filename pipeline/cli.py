"""The `firsthand` command (also `python -m pipeline`)."""
from __future__ import annotations

import argparse
import logging
import sys


class _QuietBeamImportNoise(logging.Filter):
    """Beam warns on import that optional Google Cloud clients are absent; irrelevant to local runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


logging.getLogger().addFilter(_QuietBeamImportNoise())  # before anything imports Beam

from pipeline.options import ConfigError, FirsthandOptions, config_file_args  # noqa: E402

USAGE = """usage: firsthand COMMAND [options]

commands:
  run      run the pipeline: firsthand run --input GLOB --output DIR [options] [Beam options]
  demo     write the demo corpus: firsthand demo --output DIR
  schema   print the output tables' columns as Markdown
  report   write a finished run's HTML report: firsthand report RUN_DIR [--out FILE]
  train-detector  train the synthetic-text detector stack from labelled JSON Lines
  evaluate        score labelled JSON Lines with a detector stack (AUROC, TPR at FPR, calibration,
                  per dataset/domain/generator, leave-one-dataset-out)

`firsthand COMMAND --help` explains each command's options.
"""

_OWN_VALUE_FLAGS = ("--config", "--workers")
_OWN_SWITCHES = ("--verbose", "-v", "--detach", "--no-report")


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firsthand run", allow_abbrev=False,
        description="Read sharded web text, tag every document with provenance, write Parquet shards.",
        epilog="Any Apache Beam pipeline option passes through: --runner, --direct_num_workers, "
               "--temp_location, --project, ... The default runner is FnApiRunner.")
    parser.add_argument("--config", help="YAML or JSON file of firsthand's pipeline options (from --input on "
                        "below; not --workers, --verbose or Beam options). An option given on the command line "
                        "replaces the file's value, --input included.")
    parser.add_argument("--workers", type=int, default=None,
                        help="Local worker processes (FnApiRunner multi_processing); 1 runs in one process.")
    parser.add_argument("--verbose", "-v", action="store_true", help="Also show Beam's own INFO logs.")
    parser.add_argument("--detach", action="store_true",
                        help="Submit the job and return without waiting (Dataflow Flex Templates). The job still "
                             "writes manifest.json last; the driver's metrics cross-check is skipped.")
    parser.add_argument("--no-report", action="store_true",
                        help="Do not write report.html at the end (`firsthand report` writes it later).")
    FirsthandOptions._add_argparse_args(parser)
    return parser


def _without_own_flags(argv: list[str]) -> list[str]:
    """argv minus firsthand's own command flags (--config, --workers, ...), which Beam must not see."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _OWN_VALUE_FLAGS:
            skip = True
        elif arg in _OWN_SWITCHES or arg.split("=", 1)[0] in _OWN_VALUE_FLAGS:
            continue
        else:
            out.append(arg)
    return out


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("firsthand").setLevel(logging.INFO)
    if not verbose:
        logging.getLogger("apache_beam").setLevel(logging.WARNING)


def cmd_run(argv: list[str]) -> int:
    parser = _run_parser()
    own, _ = parser.parse_known_args(argv)  # --help, and type errors with a clear message
    given = {a.split("=", 1)[0].lstrip("-").replace("-", "_") for a in argv if a.startswith("--")}
    config_args = config_file_args(own.config, skip=given) if own.config else []
    if config_args:
        parser.parse_known_args(config_args + argv)
    if own.workers is not None and own.workers < 1:
        raise ConfigError(f"--workers must be 1 or more, got {own.workers}")
    _setup_logging(own.verbose)
    from pipeline.run import run, summary  # Beam's import is slow; keep `--help` fast
    manifest = run(config_args + _without_own_flags(argv), workers=own.workers, wait=not own.detach,
                   report=not own.no_report)
    if manifest is None:
        print("submitted; the job writes manifest.json in its --output folder when it has finished")
    else:
        print(summary(manifest, manifest["config"]["output"]))
    return 0


def cmd_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="firsthand demo", description="Write the demo corpus to a folder.")
    parser.add_argument("--output", required=True, help="Folder to write the demo shards into.")
    args = parser.parse_args(argv)
    from pipeline.demo import write_demo
    for path in write_demo(args.output):
        print(path)
    return 0


def cmd_schema(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="firsthand schema", description="Print the output columns as Markdown.")
    parser.add_argument("--table", choices=("documents", "errors"), default=None)
    args = parser.parse_args(argv)
    from schemas import DOCUMENT_COLUMNS, ERROR_COLUMNS, SCHEMA_VERSION, columns_markdown
    print(f"Schema version {SCHEMA_VERSION}\n")
    if args.table in (None, "documents"):
        print("### kept/, rejected/, documents/\n\n" + columns_markdown(DOCUMENT_COLUMNS) + "\n")
    if args.table in (None, "errors"):
        print("### errors/\n\n" + columns_markdown(ERROR_COLUMNS))
    return 0


def cmd_report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="firsthand report", description="Write one self-contained HTML page about a finished run, from its "
        "manifest and output shards only (firsthand run writes it into the run folder too).")
    parser.add_argument("run_dir", help="The run's --output folder (local, gs://, s3://, ...).")
    parser.add_argument("--out", default=None, help="Where to write the page (default: RUN_DIR/report.html).")
    parser.add_argument("--sample-rows", type=int, default=None,
                        help="Documents read for distributions and tail retention; a larger run is sampled, "
                             "the same fraction of every table (default: 200000).")
    args = parser.parse_args(argv)
    if args.sample_rows is not None and args.sample_rows < 1:
        raise ConfigError(f"--sample-rows must be 1 or more, got {args.sample_rows}")
    _setup_logging(verbose=False)
    from pipeline.report import DEFAULT_SAMPLE_ROWS, write_report
    print(write_report(args.run_dir, args.sample_rows or DEFAULT_SAMPLE_ROWS, args.out))
    return 0


def cmd_train_detector(argv: list[str]) -> int:
    from pipeline.detector_commands import cmd_train_detector as command
    return command(argv)


def cmd_evaluate(argv: list[str]) -> int:
    from pipeline.detector_commands import cmd_evaluate as command
    return command(argv)


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "schema": cmd_schema, "report": cmd_report,
            "train-detector": cmd_train_detector, "evaluate": cmd_evaluate}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"firsthand: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return command(argv[1:])
    except ConfigError as e:
        print(f"firsthand: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - one clear line for the user; the log above has the trace
        from pipeline.manifest import AccountingError
        if isinstance(e, AccountingError) or AccountingError.__name__ in str(e):
            print(f"firsthand: accounting error: {e}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
