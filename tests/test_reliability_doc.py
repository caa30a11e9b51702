"""docs/reliability.md names a test for every row of its matrix: each must exist."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"


def _tests_in(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_matrix_row_names_tests_that_exist():
    rows, in_matrix = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith(("| case ", "| property ")):
            in_matrix = True
        elif not line.startswith("|"):
            in_matrix = False
        elif in_matrix and line.startswith("| "):
            rows.append(line)
    assert len(rows) >= 40
    missing = []
    for row in rows:
        named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row.rsplit("|", 2)[-2])
        assert named, f"a matrix row names no test: {row[:80]}"
        missing += [f"{f}::{t}" for f, t in named if t not in _tests_in(ROOT / f)]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
