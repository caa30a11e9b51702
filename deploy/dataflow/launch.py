"""Flex Template entry point: `firsthand run` with the template's parameters, detached.

Dataflow's launcher runs this file with the job's parameters as `--name=value` arguments
(firsthand's options accept underscore spellings for that). A parameter carries one value,
so several input patterns arrive as `--input=a;b`; switches arrive as `--overwrite=true`
and become `--overwrite` (or nothing for false). The job is submitted and this returns
without waiting: the job itself writes manifest.json last.
"""
from __future__ import annotations

import sys

from pipeline.cli import main
from pipeline.options import switch_names


def template_args(argv: list[str]) -> list[str]:
    """Template parameters -> `firsthand run` arguments."""
    switches, out = switch_names(), []
    for arg in argv:
        name, has_value, value = arg.partition("=")
        option = name.lstrip("-").replace("-", "_")
        if has_value and option in switches:
            if value.lower() not in ("true", "false"):
                raise SystemExit(f"firsthand: error: {name} takes true or false, got {value!r}")
            if value.lower() == "true":
                out.append(name)
        elif has_value and option == "input":
            out.extend(f"{name}={pattern}" for pattern in value.split(";") if pattern)
        else:
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main(["run", "--detach", *template_args(sys.argv[1:])]))
