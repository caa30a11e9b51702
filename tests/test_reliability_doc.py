"""docs/reliability.md names a test for every row of its matrix: each must exist, and each
error kind, flag or reason a row promises must be asserted by one of the tests it names."""
import ast
import pathlib
import re

import schemas
from pipeline.formats import records

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
_SNAKE = re.compile(r"[a-z]+(?:_[a-z0-9]+)+")
# the strings a row can promise, by constant name: error kinds, flags and reject reasons
OUTCOMES = {name: value for module, prefixes in ((records, ("",)), (schemas, ("FLAG_", "REASON_")))
            for name, value in vars(module).items()
            if name.isupper() and name.startswith(prefixes) and isinstance(value, str) and _SNAKE.fullmatch(value)}


def _rows() -> list[str]:
    rows, in_matrix = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith(("| case ", "| property ")):
            in_matrix = True
        elif not line.startswith("|"):
            in_matrix = False
        elif in_matrix and line.startswith("| ") and not line.startswith("|---"):
            rows.append(line)
    return rows


def _sources(path: pathlib.Path) -> dict[str, str]:
    """Test name -> its source, decorators (parametrize tables) included."""
    text = path.read_text()
    lines = text.splitlines()
    out = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            out[node.name] = "\n".join(lines[start - 1:node.end_lineno])
    return out


def _named(row: str) -> list[tuple[str, str]]:
    return re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row.rsplit("|", 2)[-2])


def test_every_matrix_row_names_tests_that_exist():
    rows = _rows()
    assert len(rows) >= 40
    missing = []
    for row in rows:
        named = _named(row)
        assert named, f"a matrix row names no test: {row[:80]}"
        missing += [f"{f}::{t}" for f, t in named if t not in _sources(ROOT / f)]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_every_kind_flag_or_reason_a_row_promises_is_asserted_by_a_test_it_names():
    assert {"INVALID_UNICODE", "FLAG_CONTROL_CHARACTERS", "REASON_EXACT_DUPLICATE"} <= set(OUTCOMES)
    unheld = []
    for row in _rows():
        case_and_outcome = row.rsplit("|", 2)[0]
        promised = {c for c in re.findall(r"`([^`]+)`", case_and_outcome) if c in OUTCOMES.values()}
        sources = "\n".join(_sources(ROOT / f).get(t, "") for f, t in _named(row))
        for value in sorted(promised):
            names = [n for n, v in OUTCOMES.items() if v == value]
            if value not in sources and not any(re.search(rf"\b{n}\b", sources) for n in names):
                unheld.append(f"{value!r} in: {row[:60]}")
    assert not unheld, f"rows whose named tests never mention what the row promises: {unheld}"
