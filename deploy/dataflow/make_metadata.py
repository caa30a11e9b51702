"""Write the Flex Template's metadata.json from firsthand's real pipeline options.

    python deploy/dataflow/make_metadata.py > deploy/dataflow/metadata.json

Every option of `firsthand run` becomes a template parameter under its underscore name,
with its help as helpText and a regex that Dataflow checks before launching anything:
the choices of a choice option, the allowed range of a number, true/false for switches
(launch.py turns `--overwrite=true` into `--overwrite`), a Beam filesystem URL for paths.
A test regenerates this file and compares, so the template cannot drift from the pipeline;
another fails if an option has no rule here.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.options import option_actions  # noqa: E402

REQUIRED = ("input", "output")
URL = r"^[a-z][a-z0-9+.-]*://[^;]+(;[a-z][a-z0-9+.-]*://[^;]+)*$"  # workers never see a local disk
SINGLE_URL = r"^[a-z][a-z0-9+.-]*://\S+$"
COUNT = r"^[1-9][0-9]*$"                   # 1 or more
COUNT_OR_AUTO = r"^(0|[1-9][0-9]*)$"       # 0 means automatic
FRACTION_OPEN = r"^0?\.[0-9]*[1-9][0-9]*$"  # strictly between 0 and 1
FRACTION_TO_ONE = r"^(0?\.[0-9]*[1-9][0-9]*|1(\.0*)?)$"  # in (0, 1]
FIELD_PATHS = r"^[A-Za-z0-9_@$-]+(\.[A-Za-z0-9_@$-]+)*(,[A-Za-z0-9_@$-]+(\.[A-Za-z0-9_@$-]+)*)*$"
SWITCH = r"^(true|false)$"

# Options without choices and their rules, mirroring the checks in pipeline/options.py.
RULES = {
    "input": URL, "output": SINGLE_URL, "detector_model": SINGLE_URL,
    "text_field": FIELD_PATHS, "id_field": FIELD_PATHS, "url_field": FIELD_PATHS, "date_field": FIELD_PATHS,
    "num_shards": COUNT_OR_AUTO, "dedup_partitions": COUNT_OR_AUTO, "cc_rounds": COUNT_OR_AUTO,
    "shard_input_mb": COUNT, "max_record_bytes": COUNT, "shingle_size": COUNT, "minhash_perms": COUNT,
    "lsh_bands": COUNT, "lsh_rows": COUNT, "detector_batch": COUNT,
    "dedup_threshold": FRACTION_OPEN, "synthetic_threshold": FRACTION_OPEN, "date_prior_odds": FRACTION_TO_ONE,
}
# A template parameter carries one value: several input patterns are joined with ';'.
HELP = {"input": "Input files: one path or glob on a Beam filesystem (gs://...), or several separated by ';'."}


def regex_of(name: str, action: argparse.Action) -> str:
    if isinstance(action, argparse._StoreTrueAction):
        return SWITCH
    if action.choices:
        return "^(" + "|".join(re.escape(str(c)) for c in action.choices) + ")$"
    if name not in RULES:
        raise KeyError(f"option --{name} has no validation rule in make_metadata.RULES")
    return RULES[name]


def parameter(name: str, action: argparse.Action) -> dict:
    help_text = HELP.get(name) or re.sub(r"\s+", " ", action.help or "").strip()
    return {"name": name, "label": name.replace("_", " ").capitalize(), "helpText": help_text,
            "isOptional": name not in REQUIRED, "regexes": [regex_of(name, action)]}


def metadata() -> dict:
    return {
        "name": "firsthand",
        "description": "Provenance filtering for LLM training corpora: synthetic-text detection, near-duplicate "
                       "clustering with a provenance-aware kept copy, Parquet shards and a manifest that accounts "
                       "for every input record.",
        "streaming": False,
        "parameters": [parameter(name, action) for name, action in option_actions().items()],
    }


if __name__ == "__main__":
    print(json.dumps(metadata(), indent=2))
