"""Fixtures shared by the end-to-end test modules."""
import importlib
import os
from typing import Callable

import pytest

from pipeline.demo import write_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The demo corpus, written once per test session (tests only read it)."""
    folder = tmp_path_factory.mktemp("demo")
    write_demo(str(folder))
    return str(folder)


@pytest.fixture
def optional_import() -> Callable[[str], object]:
    """Import an optional package or skip the test; a package CI must test with (torch under
    FIRSTHAND_REQUIRE_TORCH=1, which .ci/run sets) fails the test instead, so a missing wheel
    cannot leave CI green with its tests skipped."""
    required = {"torch"} if os.environ.get("FIRSTHAND_REQUIRE_TORCH") == "1" else set()

    def load(name: str) -> object:
        if name not in required:
            return pytest.importorskip(name)
        try:
            return importlib.import_module(name)
        except ImportError as e:
            pytest.fail(f"FIRSTHAND_REQUIRE_TORCH=1 but {name} cannot be imported ({e}); "
                        ".ci/run installs the local CPU wheel")
    return load
