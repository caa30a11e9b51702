"""Mutation check: does the test suite notice one small plausible bug at a time?

    .venv/bin/python bench/mutation_check.py --jobs 2 --json /tmp/mutation.json

For each module below, every mutant is made from the module's AST (a flipped comparison,
a swapped operator, a tweaked constant, a dropped term of a sum, ceil<->floor, and<->or,
a deleted statement), written over the module in a throwaway copy of the repository, and
the module's test files are run against it (`pytest -x`, per-mutant timeout). A mutant is
killed when a test fails (or the run times out), survived when every test passes. The
real files are never touched.

The copy is `git archive HEAD` by default, so the figures belong to a commit and are not
disturbed by uncommitted edits; `--tree worktree` copies the working tree instead (tracked
and untracked, not ignored, files). Mutants are listed in source order; `--sample N` (40 by
default, 0 for all) keeps N of a module's mutants, drawn with a fixed seed, so the same
commit always gives the same mutants. Hypothesis runs with a fixed seed and no database.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]

# module -> the test files that exercise it (found with grep), fastest and most direct first:
# with -x a killed mutant usually stops in the first file
MODULES: dict[str, list[str]] = {
    "detectors/prevalence.py": ["tests/test_detector_prevalence.py", "tests/test_pipeline_detect.py"],
    "detectors/calibration.py": ["tests/test_calibration.py", "tests/test_detector_metrics.py",
                                 "tests/test_detector_stack.py", "tests/test_detector_training.py"],
    "detectors/textnorm.py": ["tests/test_textnorm.py", "tests/test_detector_features.py",
                              "tests/test_dedup.py"],
    "pipeline/decisions.py": ["tests/test_decisions.py", "tests/test_pipeline_detect.py"],
    "pipeline/manifest.py": ["tests/test_manifest_and_schema.py", "tests/test_fault_matrix.py",
                             "tests/test_pipeline_detect.py", "tests/test_pipeline.py"],
    "pipeline/graph.py": ["tests/test_minhash_and_graph.py", "tests/test_neardup.py"],
}
SAMPLE_SEED = 25

_COMPARE_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                 ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
               ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr,
               ast.LShift: ast.RShift, ast.RShift: ast.LShift}
_NAME_SWAP = {"ceil": "floor", "floor": "ceil", "min": "max", "max": "min", "minimum": "maximum",
              "maximum": "minimum", "any": "all", "all": "any"}
_DELETABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Delete, ast.Raise, ast.Break, ast.Continue)


@dataclass
class Mutant:
    module: str
    index: int          # position in the module's full, source-ordered list
    line: int
    operator: str
    change: str         # "before -> after", as source
    status: str = "pending"   # killed / survived / timeout / error
    seconds: float = 0.0
    failed_test: str = ""


# --- making mutants --------------------------------------------------------------------------

def _source(node: ast.AST) -> str:
    return ast.unparse(node).replace("\n", " ")   # spaces inside string literals kept as they are


def _change(before: ast.AST, after: "ast.AST | None") -> str:
    """`before` -> `after`, cut to the part that differs (with a little context) when long."""
    old = _source(before)
    if after is None:
        return f"delete `{old if len(old) <= 70 else old[:67] + '...'}`"
    new = _source(after)
    if len(old) > 70 or len(new) > 70:
        start = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
        end = 0
        while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
            end += 1
        lo, cut = max(0, start - 25), max(0, end - 20)
        old, new = (("..." if lo else "") + t[lo:len(t) - cut] + ("..." if cut else "") for t in (old, new))
    return f"`{old}` -> `{new}`"


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside type hints: mutating those changes nothing at run time."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        hints = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            hints.append(node.returns)
            args = node.args
            hints += [a.annotation for a in args.posonlyargs + args.args + args.kwonlyargs]
            hints += [a.annotation for a in (args.vararg, args.kwarg) if a is not None]
        elif isinstance(node, ast.AnnAssign):
            hints.append(node.annotation)
        for hint in hints:
            if hint is not None:
                skip.update(id(n) for n in ast.walk(hint))
    return skip


def _not_mutated(tree: ast.Module) -> set[int]:
    """ids of nodes left alone: docstrings, decorators (configuration, not logic), log calls
    (no behaviour), and assignments whose deletion only leaves a name undefined (killed by
    any test that reaches them, so they would only pad the kill rate)."""
    out = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.update(id(n) for d in node.decorator_list for n in ast.walk(d))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                    func.value.id in ("_log", "logging", "log"):
                out.add(id(node))
    for scope in [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        bound: dict[str, int] = {}   # name -> how many times the scope binds it
        if not isinstance(scope, ast.Module):
            for a in scope.args.posonlyargs + scope.args.args + scope.args.kwonlyargs:
                bound[a.arg] = bound.get(a.arg, 0) + 1
        assigns = [n for n in _own_nodes(scope) if isinstance(n, (ast.Assign, ast.AnnAssign))]
        for n in assigns:
            for name in _target_names(n):
                bound[name] = bound.get(name, 0) + 1
        for n in assigns:
            names = _target_names(n)
            if names and all(bound[name] == 1 for name in names):
                out.add(id(n))
    return out


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a scope, not those of functions or classes nested in it."""
    for child in ast.iter_child_nodes(scope):
        yield child
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield from _own_nodes(child)


def _target_names(node: ast.AST) -> list[str]:
    """The names an assignment binds (not those it indexes into: `a[0] = x` binds nothing)."""
    def names(target: ast.AST) -> list[str]:
        if isinstance(target, ast.Name):
            return [target.id]
        if isinstance(target, (ast.Tuple, ast.List)):
            return [n for t in target.elts for n in names(t)]
        return names(target.value) if isinstance(target, ast.Starred) else []
    return [n for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) for n in names(t)]


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first))
    return out


def _constant_variants(value: object) -> list[object]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [1] if value == 0 else [0, value + 1] if value == 1 else [value + 1]
    if isinstance(value, float):
        if value == 1.96:
            return [1.645]     # a 90% interval passed off as 95%
        return [1.0] if value == 0.0 else [value * 1.1]
    return []


# A site is (node, operator, replacement node or None to delete the statement).
Site = tuple[ast.AST, str, "ast.AST | None"]


def _sites(tree: ast.Module) -> Iterator[Site]:
    skip = _annotation_nodes(tree) | _not_mutated(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAP:
                    new = copy.deepcopy(node)
                    new.ops[i] = _COMPARE_SWAP[type(op)]()
                    yield node, "compare", new
        elif isinstance(node, (ast.BinOp, ast.AugAssign)):
            if type(node.op) in _BINOP_SWAP:
                new = copy.deepcopy(node)
                new.op = _BINOP_SWAP[type(node.op)]()
                yield node, "arithmetic", new
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
                yield node, "drop term", copy.deepcopy(node.left)
        elif isinstance(node, ast.BoolOp):
            new = copy.deepcopy(node)
            new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            yield node, "and/or", new
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "drop not", copy.deepcopy(node.operand)
        elif isinstance(node, ast.Constant) and not isinstance(node.value, str):
            for value in _constant_variants(node.value):
                yield node, "constant", ast.Constant(value)
        elif isinstance(node, ast.Attribute) and node.attr in _NAME_SWAP and isinstance(node.ctx, ast.Load):
            new = copy.deepcopy(node)
            new.attr = _NAME_SWAP[node.attr]
            yield node, "swap call", new
        elif isinstance(node, ast.Name) and node.id in _NAME_SWAP and isinstance(node.ctx, ast.Load):
            yield node, "swap call", ast.Name(_NAME_SWAP[node.id], ast.Load())
        # a bare annotation (a dataclass field) is a declaration, not a step that can be forgotten
        if isinstance(node, _DELETABLE) and not (isinstance(node, ast.AnnAssign) and node.value is None):
            yield node, "delete statement", None


def _key(node: ast.AST) -> tuple:
    return (type(node).__name__, node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)


def _replace(tree: ast.Module, key: tuple, new: "ast.AST | None") -> ast.Module:
    """A copy of the tree with the node at `key` replaced by `new` (None: a statement deleted)."""
    tree = copy.deepcopy(tree)
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            children = value if isinstance(value, list) else [value]
            for i, child in enumerate(children):
                if isinstance(child, ast.AST) and hasattr(child, "lineno") and _key(child) == key:
                    replacement = ast.Pass() if new is None else copy.deepcopy(new)
                    if isinstance(value, list):
                        value[i] = replacement
                    else:
                        setattr(parent, field, replacement)
                    return ast.fix_missing_locations(tree)
    raise LookupError(key)


def mutants(module: str, source: str) -> list[tuple[Mutant, str]]:
    """Every distinct mutant of a module as (record, mutated source), in source order."""
    tree = ast.parse(source)
    baseline = ast.unparse(tree)
    out, seen = [], {baseline}
    sites = sorted(((node, op, new) for node, op, new in _sites(tree)),
                   key=lambda s: (s[0].lineno, s[0].col_offset, s[1], ast.dump(s[2]) if s[2] else ""))
    for node, operator, new in sites:
        text = ast.unparse(_replace(tree, _key(node), new))
        if text in seen:
            continue
        seen.add(text)
        change = _change(node, new)
        out.append((Mutant(module, len(out), node.lineno, operator, change), text))
    return out


def choose(found: list[tuple[Mutant, str]], sample: int, limit: int) -> list[tuple[Mutant, str]]:
    if sample and len(found) > sample:
        rng = random.Random(f"{SAMPLE_SEED}:{found[0][0].module}")
        found = sorted(rng.sample(found, sample), key=lambda m: m[0].index)
    return found[:limit] if limit else found


# --- running them ----------------------------------------------------------------------------

def make_tree(where: Path, tree: str) -> Path:
    where.mkdir(parents=True)
    if tree == "HEAD":
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    else:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                               check=True, capture_output=True).stdout.decode().split("\0")
        for name in filter(None, names):
            src = ROOT / name
            if src.is_file():
                (where / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, where / name)
    return where


def run_tests(tree: Path, tests: list[str], timeout: float) -> tuple[str, float, str]:
    """(killed / survived / timeout / error, seconds, first failing test)."""
    shutil.rmtree(tree / ".hypothesis", ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0",
               *tests]
    started = time.perf_counter()
    # a session of its own, so that a timeout kills the test's workers too
    proc = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", time.perf_counter() - started, ""
    seconds = time.perf_counter() - started
    text = out.decode(errors="replace")
    failed = next((line.split(" ")[1] for line in text.splitlines() if line.startswith(("FAILED ", "ERROR "))), "")
    # 1: a test failed; 2: collection failed (the mutant broke an import); 0: all passed
    status = {0: "survived", 1: "killed", 2: "killed"}.get(proc.returncode, "error")
    return status, seconds, failed


def check_module(module: str, chosen: list[tuple[Mutant, str]], trees: list[Path], factor: float,
                 log: Callable[[str], None]) -> tuple[list[Mutant], float | None]:
    tests = MODULES[module]
    status, baseline, failed = run_tests(trees[0], tests, timeout=1800)
    if status != "survived":   # a mutant can only be judged against tests that pass without it
        log(f"{module}: the unmutated tests do not pass ({status}, {failed}); module skipped")
        return [], None
    timeout = baseline * factor + 30
    log(f"{module}: baseline {baseline:.1f}s, {len(chosen)} mutants, timeout {timeout:.0f}s each")
    original = (trees[0] / module).read_text()
    free = list(trees)

    def one(item: tuple[Mutant, str]) -> Mutant:
        mutant, text = item
        tree = free.pop()
        try:
            (tree / module).write_text(text)
            mutant.status, mutant.seconds, mutant.failed_test = run_tests(tree, tests, timeout)
        finally:
            (tree / module).write_text(original)
            free.append(tree)
        log(f"  {mutant.status:8} {mutant.seconds:6.1f}s  #{mutant.index} line {mutant.line} "
            f"{mutant.operator}: {mutant.change}")
        return mutant

    with ThreadPoolExecutor(len(trees)) as pool:
        return list(pool.map(one, chosen)), baseline


def table(results: list[Mutant], found: dict[str, int]) -> str:
    """Markdown: per module and in all, mutants tested (of those made) and what became of them;
    a timeout counts as killed (the mutant hung the tests)."""
    lines = ["| module | mutants (of all) | killed | timeout | survived | error | kill rate |",
             "|---|---|---|---|---|---|---|"]

    def row(name: str, rows: list[Mutant], made: int) -> str:
        count = {s: sum(m.status == s for m in rows) for s in ("killed", "timeout", "survived", "error")}
        rate = (count["killed"] + count["timeout"]) / max(len(rows), 1)
        return (f"| {name} | {len(rows)} ({made}) | {count['killed']} | {count['timeout']} | "
                f"{count['survived']} | {count['error']} | {rate:.1%} |")

    tested = [m for m in found if any(r.module == m for r in results)]
    lines += [row(f"`{m}`", [r for r in results if r.module == m], found[m]) for m in tested]
    lines.append(row("all", results, sum(found[m] for m in tested)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", help="a module path or name (repeatable); default all six")
    parser.add_argument("--sample", type=int, default=40, help="mutants kept per module, by fixed seed (0: all)")
    parser.add_argument("--limit", type=int, default=0, help="then keep only the first N per module")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once, each in its own copy")
    parser.add_argument("--timeout-factor", type=float, default=3.0, help="per-mutant timeout: baseline x this + 30s")
    parser.add_argument("--tree", choices=("HEAD", "worktree"), default="HEAD")
    parser.add_argument("--list", action="store_true", help="print the chosen mutants and stop")
    parser.add_argument("--json", help="write every mutant's result here")
    args = parser.parse_args(argv)

    modules = list(MODULES)
    if args.module:
        wanted = [m if m.endswith(".py") else next((k for k in MODULES if Path(k).stem == m), m) for m in args.module]
        unknown = [m for m in wanted if m not in MODULES]
        if unknown:
            parser.error(f"unknown module {unknown}; choose from {list(MODULES)}")
        modules = wanted

    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        trees = [make_tree(Path(tmp) / f"tree{j}", args.tree) for j in range(max(1, args.jobs))]
        found, chosen = {}, {}
        for module in modules:
            every = mutants(module, (trees[0] / module).read_text())
            found[module], chosen[module] = len(every), choose(every, args.sample, args.limit)
        if args.list:
            for module in modules:
                for m, _ in chosen[module]:
                    print(f"{module} #{m.index} line {m.line} {m.operator}: {m.change}")
            return 0
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        results, baselines = [], {}
        started = time.perf_counter()
        for module in modules:
            done, baselines[module] = check_module(module, chosen[module], trees, args.timeout_factor,
                                                   lambda s: print(s, flush=True))
            results += done
    elapsed = time.perf_counter() - started
    print()
    print(table(results, found))
    survivors = [m for m in results if m.status != "killed" and m.status != "timeout"]
    if survivors:
        print("\nsurvivors:")
        for m in survivors:
            print(f"  {m.module} #{m.index} line {m.line} {m.operator} ({m.status}): {m.change}")
    where = f"commit {commit}" if args.tree == "HEAD" else f"working tree on commit {commit}"
    print(f"\n{len(results)} mutants in {elapsed / 60:.1f} min ({where})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "tree": args.tree, "commit": commit, "sample": args.sample, "limit": args.limit, "seed": SAMPLE_SEED,
            "mutants_found": found, "baseline_seconds": baselines, "minutes": round(elapsed / 60, 1),
            "tests": {m: MODULES[m] for m in modules}, "mutants": [asdict(m) for m in results]}, indent=1))
    return 1 if None in baselines.values() else 0


if __name__ == "__main__":
    sys.exit(main())
