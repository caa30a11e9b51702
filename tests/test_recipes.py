"""Every code block of docs/recipes.md, run against a real run: all select the same documents
as firsthand_reader (and as a plain pyarrow reference)."""
import os
import re

import pyarrow.parquet as pq
import pytest

from pipeline.run import run

RECIPES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "recipes.md")


def _blocks() -> dict[str, str]:
    """Section title -> its python block; the block before the first section is 'manifest'."""
    text = open(RECIPES, encoding="utf-8").read()
    intro, *sections = re.split(r"^## ", text, flags=re.M)
    blocks = {"manifest": re.search(r"```python\n(.*?)```", intro, flags=re.S).group(1)}
    for section in sections:
        title, body = section.split("\n", 1)
        code = re.search(r"```python\n(.*?)```", body, flags=re.S)
        if code:
            blocks[title.strip()] = code.group(1)
    return blocks


BLOCKS = _blocks()
NEEDS = {"DuckDB": "duckdb", "Polars": "polars", "Hugging Face `datasets` (parquet loader)": "datasets",
         "PyTorch": "torch"}


@pytest.fixture(scope="module")
def run_dir(demo, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("recipes") / "run")
    run(["--input", f"{demo}/*", "--output", out, "--num-shards", "2"])
    return out


def _expected(run_dir: str) -> list[str]:
    namespace = {"run_dir": run_dir}
    exec(BLOCKS["manifest"], namespace)  # noqa: S102 - our own documentation
    rows = [r for f in namespace["files"] for r in pq.read_table(f).to_pylist()]
    return sorted(r["id"] for r in rows if r["dup_is_representative"]
                  and (r["synthetic_probability"] is None or r["synthetic_probability"] <= 0.5)
                  and "chatbot_residue" not in r["flags"])


def test_the_page_has_every_recipe():
    assert set(BLOCKS) >= {"manifest", "firsthand_reader (pyarrow only; sharding, shuffling, resuming)",
                           "pyarrow.dataset", *NEEDS}


@pytest.mark.parametrize("title", [t for t in BLOCKS if t != "manifest"])
def test_recipe_selects_the_same_documents(title, run_dir, tmp_path, optional_import):
    if title in NEEDS:  # optional tools: skipped only where the package is not installed (torch: never in CI)
        optional_import(NEEDS[title])
    namespace = {"run_dir": run_dir, "cache_dir": str(tmp_path / "cache")}
    exec(BLOCKS["manifest"], namespace)  # noqa: S102
    exec(BLOCKS[title], namespace)       # noqa: S102
    expected = _expected(run_dir)
    assert expected and sorted(namespace["ids"]) == expected
