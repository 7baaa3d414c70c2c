"""Two `edgesep search` commands share one study through a real PostgreSQL server (Optuna's RDB
storage), the scale-out path of docs/SEARCH.md.

The test starts a throwaway server of the Debian ``postgresql`` package on 127.0.0.1 (initdb in a
temporary folder, trust authentication, a free port) and stops it afterwards. It runs wherever the
server binaries are installed (``apt-get install postgresql``; scripts/test_search_postgres.sh).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from test_search import ENV, _space

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytest.importorskip("psycopg2", reason="the PostgreSQL driver (pip install psycopg2-binary)")
pytestmark = pytest.mark.skipif(not BIN, reason="PostgreSQL server not installed (apt)")


def _as_server_user(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the package's postgres user
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture
def server() -> Iterator[str]:
    bin_dir = Path(BIN[-1])
    root = Path(tempfile.mkdtemp(prefix="edgesep-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*a: object) -> None:
        subprocess.run(_as_server_user([str(x) for x in a]), check=True, capture_output=True)

    run(bin_dir / "initdb", "-D", data, "-U", "edgesep", "--auth=trust")
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    run(bin_dir / "pg_ctl", "-D", data, "-o", opts, "-w", "-l", data / "log", "start")
    try:
        yield f"postgresql+psycopg2://edgesep@127.0.0.1:{port}/postgres"
    finally:
        run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_two_commands_share_a_postgresql_study(server: str, tmp_path: Path) -> None:
    proxy = {**json.loads(_space(tmp_path).read_text())["proxy"], "steps": 6}
    space = _space(tmp_path, proxy=proxy)
    subprocess.run(  # the smoke data, once, before the two commands race to build it
        [sys.executable, "-m", "edgesep", "data", "smoke", "data/smoke8k"], cwd=tmp_path, check=True
    )
    args = ["--trials", "8", "--storage", server, "--study", "pg"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgesep",
                "search",
                str(space),
                "-o",
                str(tmp_path / f"out{k}"),
                *args,
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **ENV},
        )
        for k in range(2)
    ]
    for p in procs:
        log, _ = p.communicate(timeout=300)
        assert p.returncode == 0, log[-2000:]
    trials = optuna.load_study(study_name="pg", storage=server).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 8 <= len(finished) <= 9
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    # a command's report reads the shared study: it lists trials the other command ran
    rows = json.loads((tmp_path / "out1" / "trials.json").read_text())
    by_worker = {t.number: t.user_attrs["worker"] for t in finished}
    assert len({by_worker[r["trial"]] for r in rows}) == 2
