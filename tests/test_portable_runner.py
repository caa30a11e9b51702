"""The pipeline through Beam's portable Job API, as a Flink job server would run it: Beam's
local job service and an EXTERNAL Python worker pool (what a TaskManager's sidecar runs),
both started here on loopback. The output must equal FnApiRunner's, byte for byte."""
import os
import socket
import subprocess
import sys
import time

import pytest

from pipeline.run import run
from tests.helpers import assert_same_bytes, files_under, manifest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@pytest.fixture(scope="module")
def portable_services(tmp_path_factory):
    """(job endpoint, worker pool endpoint, the pool's log); both processes stopped afterwards."""
    logs = tmp_path_factory.mktemp("portable")
    # The pool starts workers as `python -c ...`: this interpreter's folder goes first on PATH.
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    job_port, pool_port = _free_port(), _free_port()
    commands = [
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(job_port)],
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={pool_port}"],
    ]
    processes = []
    try:
        for command, port in zip(commands, (job_port, pool_port)):
            log = open(logs / f"{port}.log", "wb")  # noqa: SIM115 - closed with the process below
            processes.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log))
            _wait_for_port(port, processes[-1][0])
        yield f"localhost:{job_port}", f"localhost:{pool_port}", logs / f"{pool_port}.log"
    finally:
        for process, log in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def test_portable_runner_with_an_external_worker_pool_writes_what_fnapirunner_writes(
        demo, tmp_path, portable_services):
    job_endpoint, pool_endpoint, pool_log = portable_services
    local, portable = str(tmp_path / "fnapi"), str(tmp_path / "portable")
    run(["--input", f"{demo}/*", "--output", local, "--num-shards", "2"])
    run(["--input", f"{demo}/*", "--output", portable, "--num-shards", "2",
         "--runner", "PortableRunner", "--job_endpoint", job_endpoint,
         "--environment_type", "EXTERNAL", "--environment_config", pool_endpoint])
    files = files_under(local, ".parquet")
    assert len(files) >= 5 and files_under(portable, ".parquet") == files
    assert_same_bytes(local, portable, files)
    m = manifest(portable)
    assert m["counts"] == manifest(local)["counts"]
    assert m["beam_options"]["runner"] == "PortableRunner"
    assert "Starting worker with command" in pool_log.read_text()  # the work ran in the external pool
    # the job service reports Beam's metrics, so the driver's cross-check ran
    assert m["beam_metrics"]["read.documents"] == m["counts"]["read"] - m["counts"]["errors"]
