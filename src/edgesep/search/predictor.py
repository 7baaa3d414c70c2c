"""A latency predictor fitted on the search's own measurements.

One call's compute time is modelled as a non-negative sum over block types: seconds per MAC of
convolutions, of matrix products and of recurrent layers; per element written by the leaf
modules (the memory-bound element-wise work: norms, activations, masks) and per element of a
step graph's carried state (read and rewritten every call); plus a cost per graph node (the
per-operator overhead that dominates small models) and a constant:

    t = a_conv * MACs_conv + a_matmul * MACs_matmul + a_rnn * MACs_rnn + a_other * MACs_other
        + e * activation_elems + s * state_elems + b * n_nodes + c

fitted by non-negative least squares (scipy) on relative error, so a 2 ms model weighs as much as
a 50 ms one. Its error is reported as the MAPE of leave-one-out predictions: each trial predicted
by a fit that did not see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from edgesep.errors import InputError
from edgesep.search.cost import FEATURES

MIN_POINTS = 4


ELEMENTS = ("activation_elems", "state_elems")  # rows from before these were measured: 0


def features(row: dict[str, Any]) -> np.ndarray:
    macs = row["call_macs"]
    return np.array(
        [
            *(float(macs[k]) for k in FEATURES[:-1]),
            *(float(row.get(k, 0)) for k in ELEMENTS),
            float(row["n_nodes"]),
            1.0,
        ]
    )


@dataclass(frozen=True)
class LatencyPredictor:
    coef: tuple[float, ...]
    scale: tuple[float, ...]

    def predict(self, row: dict[str, Any]) -> float:
        x = features(row) / np.asarray(self.scale)
        return float(x @ np.asarray(self.coef))

    def to_dict(self) -> dict[str, Any]:
        names = [
            *(f"ms_per_mac_{k}" for k in FEATURES[:-1]),
            "ms_per_activation_elem",
            "ms_per_state_elem",
            "ms_per_node",
            "ms_constant",
        ]
        per_unit = np.asarray(self.coef) / np.asarray(self.scale)
        return {"model": "nnls", "coefficients": dict(zip(names, per_unit.tolist(), strict=True))}


def fit(rows: Sequence[dict[str, Any]], key: str = "compute_ms") -> LatencyPredictor:
    """Fit on rows holding ``call_macs``, ``n_nodes`` and the measured ``key`` (ms)."""
    if len(rows) < MIN_POINTS:
        raise InputError(
            f"the latency predictor needs at least {MIN_POINTS} trials, got {len(rows)}"
        )
    x = np.stack([features(r) for r in rows])
    y = np.array([float(r[key]) for r in rows])
    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)
    xs = x / scale
    w = 1.0 / np.maximum(y, 1e-9)  # relative error
    coef, _ = nnls(xs * w[:, None], y * w)
    return LatencyPredictor(tuple(coef.tolist()), tuple(scale.tolist()))


def leave_one_out(rows: Sequence[dict[str, Any]], key: str = "compute_ms") -> dict[str, Any]:
    """Held-out predictions of every row and their mean absolute percentage error."""
    if len(rows) < MIN_POINTS + 1:
        return {"mape": None, "predictions": [None] * len(rows), "n": len(rows)}
    preds = []
    for i in range(len(rows)):
        model = fit([r for j, r in enumerate(rows) if j != i], key)
        preds.append(model.predict(rows[i]))
    y = np.array([float(r[key]) for r in rows])
    mape = float(np.mean(np.abs(np.array(preds) - y) / y))
    return {"mape": mape, "predictions": preds, "n": len(rows)}
