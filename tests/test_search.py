"""edgesep search: spaces and their constraints, the smoke search end to end, budgets refused
before training, pruning, resume after a kill, two workers on one SQLite study, the latency
predictor, and --train-best."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.search import driver, predictor
from edgesep.search.space import SpaceError, load_space

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "train" / "smoke-8k.yaml"
ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def _space(tmp: Path, **changes: object) -> Path:
    space = {
        "name": "t",
        "base": "convtasnet-test",
        "params": {"bn_chan": [8, 16], "hid_chan": {"low": 16, "high": 32, "step": 8}},
        "constraints": ["hid_chan % bn_chan == 0"],
        "budgets": {"model_mb": 1.0},
        "proxy": {
            "recipe": str(RECIPE),
            "steps": 2,
            "eval_every": 1,
            "valid_max_items": 2,
            "smoke_data": "data/smoke8k",
        },
        "cost": {"n_runs": 3, "n_warmup": 1},
        "pruner": {"n_startup_trials": 2},
        **changes,
    }
    path = tmp / "space.json"
    path.write_text(json.dumps(space))
    return path


def _study(out: Path, name: str = "t") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def _invoke(*args: object) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_constraints_are_evaluated_on_ast_nodes_only(tmp_path: Path) -> None:
    space = load_space(_space(tmp_path))
    assert space.violated({"bn_chan": 8, "hid_chan": 24}) == []
    assert space.violated({"bn_chan": 16, "hid_chan": 24}) == ["hid_chan % bn_chan == 0"]
    with pytest.raises(SpaceError, match="not allowed"):
        load_space(_space(tmp_path, constraints=["__import__('os').getpid() > 0"]))
    with pytest.raises(SpaceError, match="unknown field 'heads'"):
        load_space(_space(tmp_path, constraints=["hid_chan % heads == 0"]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base": "convtasnet-nope"}, "unknown base config"),
        ({"params": {"width": [1, 2]}}, "are not fields"),
        ({"objectives": ["latency_ms"]}, "objectives start with si_snri"),
        ({"budgets": {"speed": 1}}, "unknown budgets"),
        ({"params": {"bn_chan": {"low": 8}}}, "needs low and high"),
    ],
)
def test_bad_spaces_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        load_space(_space(tmp_path, **change))


def test_smoke_search_writes_its_outputs_and_trains_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    _invoke("search", _space(tmp_path), "-o", out, "--trials", 5)
    study = _study(out)
    trials = study.get_trials()
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) >= 5
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete, "no trial completed"
    for t in trials:  # constraint breakers are refused before anything is measured or trained
        cfg = t.user_attrs["config"]
        if cfg["hid_chan"] % cfg["bn_chan"]:
            assert t.state == TrialState.PRUNED and "cost" not in t.user_attrs
    rows = json.loads((out / "trials.json").read_text())
    assert sorted(r["trial"] for r in rows) == sorted(t.number for t in complete)
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto and all(r["fits_budget"] and r["pareto"] for r in pareto)
    best = max(rows, key=lambda r: r["si_snri"])
    assert best["trial"] in {r["trial"] for r in pareto}  # the best score is never dominated
    for name in ("pareto.csv", "trials.csv", "predictor.json", "pareto_latency.png", "report.html"):
        assert (out / name).stat().st_size > 0
    assert all(r["rpi5-cortex-a76_ms_projected"] > 0 for r in rows)

    _invoke("search", "--train-best", out, RECIPE, "--set", "max_steps=2")
    from edgesep import load_model

    model = load_model(str(out / f"train-best-{best['trial']:04d}" / "best.safetensors"))
    assert model.config.bn_chan == best["cfg.bn_chan"]
    assert model.config.hid_chan == best["cfg.hid_chan"]


def test_budgets_on_macs_refuse_every_config_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    _invoke("search", _space(tmp_path, budgets={"mmacs": 0.001}), "-o", out, "--trials", 3)
    trials = _study(out).get_trials()
    assert len(trials) == 3
    for t in trials:
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["rejected"].startswith(("budget: mmacs", "constraints"))
        assert "proxy" not in t.user_attrs and not t.intermediate_values
    assert not (out / "trials").exists()  # nothing was exported either


def test_trials_that_trail_the_median_stop_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each trial reports a worse score than the last: after the start-up trials, the median
    pruner stops them at their first report, before the rest of their proxy training."""
    monkeypatch.chdir(tmp_path)
    calls: list[int] = []

    def fake_proxy(model: object, proxy: object, report) -> dict:  # type: ignore[no-untyped-def]
        score = -float(len(calls))
        calls.append(0)
        for step in (1, 2, 3, 4):
            report(step, score)
        return {"si_snri": score, "steps": 4, "history": []}

    monkeypatch.setattr(driver, "proxy_train", fake_proxy)
    space = _space(
        tmp_path, params={"bn_chan": [8], "hid_chan": [16]}, pruner={"n_startup_trials": 2}
    )
    study = driver.search(space, driver.SearchOptions(tmp_path / "out", 5))
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED] * 3
    for t in study.get_trials()[2:]:
        assert t.user_attrs["pruned_at"]["step"] == 1 and list(t.intermediate_values) == [1]


def _cli(cwd: Path, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edgesep", "search", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **ENV},
    )


def _counted(out: Path) -> int:
    if not (out / "study.db").exists():
        return 0
    try:
        return driver.counted(_study(out))
    except KeyError:  # the study is not created yet
        return 0


def test_a_killed_search_resumes_where_it_stopped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    space = _space(
        tmp_path, proxy={**json.loads(_space(tmp_path).read_text())["proxy"], "steps": 6}
    )
    proc = _cli(tmp_path, space, "-o", out, "--trials", 40)
    deadline = time.time() + 120
    while _counted(out) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: t.params for t in _study(out).get_trials() if t.state != TrialState.RUNNING}
    assert len(before) >= 2
    resumed = _cli(tmp_path, space, "-o", out, "--trials", len(before) + 2)
    log, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, log[-2000:]
    assert f"{len(before)} of {len(before) + 2} trials done" in log
    after = _study(out).get_trials()
    assert driver.counted(_study(out)) >= len(before) + 2
    assert {t.number: t.params for t in after if t.number in before} == before


def test_two_workers_share_one_sqlite_study(tmp_path: Path) -> None:
    out = tmp_path / "out"
    space = _space(
        tmp_path, proxy={**json.loads(_space(tmp_path).read_text())["proxy"], "steps": 8}
    )
    proc = _cli(tmp_path, space, "-o", out, "--trials", 10, "--workers", 2)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log[-2000:]
    trials = _study(out).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 10 <= len(finished) <= 11  # MaxTrialsCallback: K workers overshoot by at most K-1
    assert len({t.user_attrs["worker"] for t in finished}) == 2


def test_latency_predictor_recovers_a_linear_cost_and_reports_held_out_error() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(12):
        macs = {"conv": rng.uniform(1e6, 1e8), "matmul": rng.uniform(0, 1e7), "rnn": 0.0}
        macs["other"] = 0.0
        nodes = int(rng.integers(50, 400))
        elems = float(rng.uniform(1e4, 1e6))
        ms = 2e-6 * macs["conv"] + 5e-6 * macs["matmul"] + 3e-6 * elems + 0.01 * nodes + 0.3
        rows.append(
            {"call_macs": macs, "activation_elems": elems, "n_nodes": nodes, "compute_ms": ms}
        )
    loo = predictor.leave_one_out(rows)
    assert loo["mape"] < 1e-3
    coef = predictor.fit(rows).to_dict()["coefficients"]
    assert coef["ms_per_mac_conv"] == pytest.approx(2e-6, rel=1e-3)
    assert coef["ms_per_node"] == pytest.approx(0.01, rel=1e-3)
    assert coef["ms_per_activation_elem"] == pytest.approx(3e-6, rel=1e-3)
    assert coef["ms_per_state_elem"] == 0  # rows without state: a zero feature
    with pytest.raises(ValueError, match="at least 4"):
        predictor.fit(rows[:3])


def test_cost_features_count_written_elements_and_a_step_graphs_state(tmp_path: Path) -> None:
    import onnx
    import torch

    from edgesep.export import export_step_onnx
    from edgesep.models.zoo_registry import build
    from edgesep.runtime import Model
    from edgesep.search.cost import _state_elements, static_cost, written_elements
    from edgesep.search.space import Cost

    net = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3), torch.nn.ReLU())
    with written_elements(net) as elements:
        net(torch.zeros(1, 1, 10))
    assert elements[0] == 2 * 4 * 8  # conv out + relu out
    net(torch.zeros(1, 1, 10))
    assert elements[0] == 2 * 4 * 8  # the hooks are gone after the block
    model = build("convtasnet-test", causal=True, norm="cLN").train()
    assert static_cost(model, Cost())["activation_elems"] > 0
    assert model.training  # the mode is restored
    model.eval()
    path = export_step_onnx(model, tmp_path / "step.onnx", hops_per_step=2)
    state = Model(path).init_state()
    graph = onnx.load(str(path)).graph
    assert _state_elements(graph) == sum(v.size for v in state.values()) > 0


def test_one_shot_mode_scores_subnets_of_a_supernet_without_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    proxy = {
        **json.loads(_space(tmp_path).read_text())["proxy"],
        "supernet": "convtasnet-elastic-test",
    }
    params = {"n_blocks": [1, 2, 3], "hid_chan": [8, 16]}
    space = _space(tmp_path, params=params, constraints=[], proxy=proxy)
    study = driver.search(space, driver.SearchOptions(tmp_path / "out", 4))
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    for t in complete:
        assert t.user_attrs["proxy"]["steps"] == 0 and not t.intermediate_values
        assert np.isfinite(t.values[0])
        assert t.user_attrs["cost"]["params"] < 20_000  # the subnet's own size, measured
    bad = _space(tmp_path, params={"skip_chan": [0, 8]}, constraints=[], proxy=proxy)
    with pytest.raises(ValueError, match="elastic fields"):
        driver.search(bad, driver.SearchOptions(tmp_path / "out2", 1))
