"""A run killed with SIGKILL at a random point leaves nothing that looks complete, and a
rerun with --overwrite writes exactly what an uninterrupted run writes."""
import os
import random
import signal
import subprocess
import sys
import time

from tests.helpers import assert_same_bytes, files_under

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "pipeline", "run", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kwargs)


def test_killed_runs_leave_no_complete_looking_output_and_reruns_match(tmp_path):
    common = ["--input", "examples/demo/*", "--num-shards", "2", "--detectors", "off"]
    clean = str(tmp_path / "clean")
    started = time.monotonic()
    assert _run([*common, "--output", clean]).wait(timeout=300) == 0
    duration = time.monotonic() - started
    rng = random.Random(5)
    killed_before_the_end = 0
    for attempt in range(4):
        out = str(tmp_path / f"killed-{attempt}")
        process = _run([*common, "--output", out])
        time.sleep(rng.uniform(0.3, 0.8) * duration)   # mid-run: reading, dedup or writing
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        if not os.path.exists(os.path.join(out, "manifest.json")):
            killed_before_the_end += 1
            # whatever it left (shards, temporary files) is not a run a reader trusts
            from firsthand_reader import RunFolderError, open_run
            try:
                open_run(out)
                raise AssertionError("an interrupted run was accepted")
            except RunFolderError:
                pass
        # rerunning over the debris gives the uninterrupted run's bytes
        started = time.monotonic()
        assert _run([*common, "--output", out, "--overwrite"]).wait(timeout=300) == 0
        # the fastest full run so far: a slow first run (cold caches, a busy machine) would
        # otherwise put every later kill after the end
        duration = min(duration, time.monotonic() - started)
        assert files_under(out) == files_under(clean)
        assert_same_bytes(clean, out, files_under(clean, ".parquet"))
    assert killed_before_the_end >= 1   # the kills did land mid-run (timing-based: most attempts do)
