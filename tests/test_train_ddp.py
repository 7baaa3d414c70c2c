"""Data-parallel training with torchrun: two CPU processes (gloo) on the smoke config.

Two ranks of batch B see, step for step, the examples one process sees with batch 2B (rank r
takes example (step * 2 + r) * B + j), and DDP averages their gradients: so the two-process run
must end with the weights of the one-process run, and a resumed two-process run too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "train" / "smoke-8k.yaml"


def _edgesep(cwd: Path, *args: str, ranks: int = 1) -> None:
    launch = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
        if ranks > 1
        else [sys.executable]
    )
    env_run = subprocess.run(
        [*launch, "-m", "edgesep", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env={"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"},
    )
    assert env_run.returncode == 0, env_run.stdout[-2000:] + env_run.stderr[-2000:]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("ddp")
    _edgesep(cwd, "data", "smoke", "data/smoke8k")
    # one process, batch 2 x 2: the reference
    _edgesep(cwd, "train", str(CONFIG), "out_dir=runs/one", "batch_size=4")
    return cwd


def test_two_processes_train_like_one_with_the_whole_batch(work: Path) -> None:
    _edgesep(work, "train", str(CONFIG), "out_dir=runs/two", ranks=2)
    one, two = _weights(work / "runs/one"), _weights(work / "runs/two")
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-5, msg=name)
    # rank 0 alone writes: one line per step, one per evaluation
    lines = [json.loads(x) for x in (work / "runs/two/log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines if "loss" in e] == [1, 2, 3, 4]
    assert [e["step"] for e in lines if "valid" in e] == [2, 4]
    assert (work / "runs/two/best.safetensors").is_file()


def test_a_resumed_two_process_run_continues_the_same_stream(work: Path) -> None:
    run = work / "runs/resumed"
    shutil.rmtree(run, ignore_errors=True)
    _edgesep(work, "train", str(CONFIG), "out_dir=runs/resumed", "max_steps=2", ranks=2)
    assert json.loads((run / "checkpoints/last/state.json").read_text())["step"] == 2
    _edgesep(work, "train", str(CONFIG), "out_dir=runs/resumed", "--resume", ranks=2)
    one = _weights(work / "runs/one")
    for name, value in _weights(run).items():
        torch.testing.assert_close(value, one[name], rtol=1e-4, atol=1e-5, msg=name)
