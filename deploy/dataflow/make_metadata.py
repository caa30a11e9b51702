"""Write the Flex Template's metadata.json from firsthand's real pipeline options.

    python deploy/dataflow/make_metadata.py > deploy/dataflow/metadata.json

Every option of `firsthand run` becomes a template parameter under its underscore name,
with its help as helpText and a regex that Dataflow checks before launching: the choices
of a choice option, a number for numeric ones, true/false for switches (launch.py turns
`--overwrite=true` into `--overwrite`). A test regenerates this file and compares, so the
template cannot drift from the pipeline.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.options import FirsthandOptions  # noqa: E402

REQUIRED = ("input", "output")
INT = r"^[0-9]+$"
FLOAT = r"^(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
SWITCH = r"^(true|false)$"
PATH = r"^[a-z][a-z0-9+.-]*://.+$"   # workers read and write through Beam filesystems, never local paths


def option_actions() -> list[argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    FirsthandOptions._add_argparse_args(parser)
    return parser._actions


def switches() -> list[str]:
    return [a.dest for a in option_actions() if isinstance(a, argparse._StoreTrueAction)]


def regex_of(action: argparse.Action) -> str | None:
    if isinstance(action, argparse._StoreTrueAction):
        return SWITCH
    if action.choices:
        return "^(" + "|".join(re.escape(str(c)) for c in action.choices) + ")$"
    if action.type is int:
        return INT
    if action.type is float:
        return FLOAT
    if action.dest in ("input", "output", "detector_model"):
        return PATH
    return None


def parameter(action: argparse.Action) -> dict:
    help_text = re.sub(r"\s+", " ", action.help or "").strip()
    entry = {"name": action.dest, "label": action.dest.replace("_", " ").capitalize(),
             "helpText": help_text, "isOptional": action.dest not in REQUIRED}
    regex = regex_of(action)
    if regex:
        entry["regexes"] = [regex]
    return entry


def metadata() -> dict:
    return {
        "name": "firsthand",
        "description": "Provenance filtering for LLM training corpora: synthetic-text detection, near-duplicate "
                       "clustering with a provenance-aware kept copy, Parquet shards and a manifest that accounts "
                       "for every input record.",
        "streaming": False,
        "supportsAtLeastOnce": False,
        "supportsExactlyOnce": True,
        "parameters": [parameter(a) for a in option_actions()],
    }


if __name__ == "__main__":
    print(json.dumps(metadata(), indent=2))
