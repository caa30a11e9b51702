"""Flex Template entry point: `firsthand run` with the template's parameters, detached.

Dataflow's launcher runs this file with the job's parameters as `--name=value` arguments
(firsthand's options accept underscore spellings for that). Switches arrive as
`--overwrite=true`; they become `--overwrite` (or nothing for false). The job is submitted
and this returns without waiting: the job itself writes manifest.json last.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.cli import main
from pipeline.options import FirsthandOptions


def _switches() -> set[str]:
    parser = argparse.ArgumentParser(add_help=False)
    FirsthandOptions._add_argparse_args(parser)
    return {a.dest for a in parser._actions if isinstance(a, argparse._StoreTrueAction)}


def template_args(argv: list[str]) -> list[str]:
    """Template parameters -> `firsthand run` arguments; a switch's value must be true or false."""
    switches, out = _switches(), []
    for arg in argv:
        name, has_value, value = arg.partition("=")
        if has_value and name.lstrip("-").replace("-", "_") in switches:
            if value.lower() not in ("true", "false"):
                raise SystemExit(f"firsthand: error: {name} takes true or false, got {value!r}")
            if value.lower() == "true":
                out.append(name)
        else:
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main(["run", "--detach", *template_args(sys.argv[1:])]))
