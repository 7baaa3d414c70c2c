"""Float vs PTQ vs QAT vs FQSS in one run: same model, data, calibration and step budget.

Every row starts from the same float model (default: the bundled ``convtasnet-tiny-8k``) and is
scored on the same test mixtures (mean SI-SNRi, dB, whole utterances, torch with fake-quant).
QAT and FQSS fine-tune for ``--steps`` steps of batch 4 x 2 s drawn from the bundled model's
training pools (dynamic mixing, seed 0), validated on 40 + 20 validation mixtures every 100
steps, best kept. Results are appended to ``--out`` (JSON) after every row; artifacts go to
``--runs/<row>``.

Usage: python benchmarks/quant_table.py [--steps 300] [--rows float,ptq,qat,fqss]
       [--weight-bits 8] [--out out/quant-table.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from needs import require

from edgesep.atomic import write_text
from edgesep.compress import PassContext, make_pass, run_pass
from edgesep.data.dynamic import DynamicMixConfig, PoolConfig
from edgesep.models.artifact import load_artifact, save_artifact
from edgesep.models.base import Separator
from edgesep.sysinfo import cpu_description
from edgesep.train.finetune import FitConfig, make_calibration, make_fit
from edgesep.train.loop import load_validation_sets, validate
from edgesep.zoo import DEFAULT_MODEL, ZOO_DIR, weights_sha256

TEST_DIRS = ("data/mix8k/synth-test", "data/mix8k/real-test")
VALID_DIRS = ("data/mix8k/synth-valid", "data/mix8k/real-valid")


def rows(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    q = {"weight_bits": args.weight_bits, "act_bits": args.act_bits}
    return {
        "float": {},
        "ptq": {"pass": "quantize-ptq", **q},
        "ptq-mse": {"pass": "quantize-ptq", "method": "mse", "weight_method": "mse", **q},
        "qat": {"pass": "qat", "steps": args.steps, **q},
        "fqss": {"pass": "fqss", "steps": args.steps, **q},
        "fqss-nores": {"pass": "fqss", "steps": args.steps, "output_residual": False, **q},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ZOO_DIR / DEFAULT_MODEL))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rows", default="float,ptq,qat,fqss")
    parser.add_argument("--weight-bits", type=int, default=8)
    parser.add_argument("--act-bits", type=int, default=8)
    parser.add_argument("--test-max", type=int, default=0, help="mixtures per test set; 0 = all")
    parser.add_argument("--out", type=Path, default=Path("out/quant-table.json"))
    parser.add_argument("--runs", type=Path, default=Path("runs/issue6-quant"))
    args = parser.parse_args()
    require(["data/speech8k-synth", "data/speech8k-real", *VALID_DIRS, *TEST_DIRS])
    torch.set_num_threads(1)
    model = load_artifact(args.model)
    data = DynamicMixConfig(
        pools=(
            PoolConfig("data/speech8k-synth", "train", 1.0),
            PoolConfig("data/speech8k-real", "train", 1.0),
        ),
        segment_seconds=2.0,
        sample_rate=8000,
        epoch_size=4000,
    )
    fit = make_fit(
        FitConfig(data=data, valid_dirs=VALID_DIRS, valid_max_items=40, batch_size=4, lr=1e-4)
    )
    ctx = PassContext(seed=0, fit=fit, calibration=make_calibration(fit, 8, 4), teacher=model)
    tests = load_validation_sets(TEST_DIRS, args.test_max)
    doc: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    doc.update({"host": cpu_description(), "model": args.model, "steps": args.steps})
    doc["model_weights_sha256"] = weights_sha256(args.model)
    table = doc.setdefault("rows", {})
    specs = rows(args)
    for name in args.rows.split(","):
        spec = specs[name]
        label = name if args.weight_bits == 8 else f"{name}-w{args.weight_bits}"
        t0 = time.time()
        out: Separator = model
        stats: dict[str, Any] = {}
        if spec:
            result = run_pass(make_pass(spec), model, ctx)
            out, stats = result.model, result.stats
            stats.pop("ranges", None)
            save_artifact(out, args.runs / label)
        scores = validate(out, tests, torch.device("cpu"))
        table[label] = {
            "spec": spec,
            "test_si_snri": scores,
            "stats": stats,
            "minutes": round((time.time() - t0) / 60, 1),
        }
        print(label, json.dumps(table[label]["test_si_snri"]), flush=True)
        write_text(args.out, json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
