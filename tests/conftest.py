"""Fixtures shared by the end-to-end test modules."""
import pytest

from pipeline.demo import write_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The demo corpus, written once per test session (tests only read it)."""
    folder = tmp_path_factory.mktemp("demo")
    write_demo(str(folder))
    return str(folder)
