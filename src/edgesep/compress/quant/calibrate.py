"""Post-training calibration of activation ranges from streamed statistics, in bounded memory.

No activation is ever kept: each quantizer holds a running minimum and maximum (pass 1) and,
for the percentile and MSE methods, a fixed-size histogram over that range (pass 2, a second
pass over the same calibration batches), whose counts are summed batch after batch. Memory is
``n_bins`` counts per quantizer, whatever the number of clips (ONNX Runtime's histogram
calibrators keep every activation instead).

Methods: ``minmax`` (the observed range), ``percentile`` (the ``percentile``-th and
``100 - percentile``-th percentiles, interpolated in the histogram) and ``mse`` (the range that
minimises the expected squared error: clipping error of the values outside the range plus the
uniform rounding noise s^2/12 of those inside, searched on a grid of shrunken ranges).

References: Nagel et al., "A White Paper on Neural Network Quantization", 2021 (range setting:
min-max, MSE, percentile); Wu et al., "Integer Quantization for Deep Learning Inference", 2020.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from rich.progress import Progress

from edgesep.compress.quant.fakequant import FakeQuant, WeightQuant, fake_quant
from edgesep.compress.quant.insert import activation_quantizers, set_mode, weight_quantizers
from edgesep.errors import InputError
from edgesep.models.base import Separator

METHODS = ("minmax", "percentile", "mse")
GRID = torch.linspace(0.02, 1.0, 50)


class MinMax:
    """Running minimum and maximum of everything seen."""

    def __init__(self) -> None:
        self.lo = float("inf")
        self.hi = float("-inf")
        self.n = 0

    def update(self, x: torch.Tensor) -> None:
        if x.numel():
            self.lo = min(self.lo, float(x.min()))
            self.hi = max(self.hi, float(x.max()))
            self.n += x.numel()


class Histogram:
    """Counts of values in ``n_bins`` equal bins over the fixed range [lo, hi].

    Shape: counts (n_bins,)
    """

    def __init__(self, lo: float, hi: float, n_bins: int = 2048) -> None:
        if not hi > lo:
            hi = lo + 1e-8
        self.lo, self.hi, self.n_bins = lo, hi, n_bins
        self.counts = torch.zeros(n_bins, dtype=torch.float64)

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().float().clamp(self.lo, self.hi)
        self.counts += torch.histc(x, self.n_bins, self.lo, self.hi).double()

    def edges(self) -> torch.Tensor:
        return torch.linspace(self.lo, self.hi, self.n_bins + 1, dtype=torch.float64)

    def centers(self) -> torch.Tensor:
        e = self.edges()
        return (e[1:] + e[:-1]) / 2

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` of the counts lie (linear within a bin)."""
        cdf = torch.cumsum(self.counts, 0)
        total = float(cdf[-1])
        if total <= 0:
            return self.lo
        target = q * total
        i = int(torch.searchsorted(cdf, torch.tensor([target], dtype=cdf.dtype))[0])
        i = min(i, self.n_bins - 1)
        below = float(cdf[i - 1]) if i > 0 else 0.0
        inside = float(self.counts[i])
        frac = (target - below) / inside if inside > 0 else 0.0
        e = self.edges()
        return float(e[i] + frac * (e[i + 1] - e[i]))


def percentile_range(hist: Histogram, percentile: float) -> tuple[float, float]:
    """[(100 - p)-th, p-th] percentiles of the histogram."""
    p = percentile / 100.0
    return hist.quantile(1.0 - p), hist.quantile(p)


def expected_mse(
    hist: Histogram, lo: torch.Tensor, hi: torch.Tensor, n_levels: int
) -> torch.Tensor:
    """Expected squared quantization error of the histogram's values for ranges [lo, hi]:
    clipping error outside plus s^2 / 12 (uniform rounding noise) inside.

    Shape: lo, hi (K,) -> (K,)
    """
    c = hist.centers()[None]  # (1, n_bins)
    n = hist.counts[None]
    lo64, hi64 = lo.double()[:, None], hi.double()[:, None]
    step = (hi64 - lo64) / (n_levels - 1)
    clipped = torch.clamp(c, lo64, hi64)
    inside = (c >= lo64) & (c <= hi64)
    err = n * (c - clipped) ** 2 + n * inside * step**2 / 12
    return err.sum(1) / n.sum().clamp_min(1)


def mse_range(hist: Histogram, n_levels: int) -> tuple[float, float]:
    """The [lo, hi] with the least expected MSE: both ends shrunk towards 0 by one factor on a
    grid, then each end alone refined on the same grid (3 x 50 candidates, not 50 x 50)."""
    lo0, hi0 = min(hist.lo, 0.0), max(hist.hi, 0.0)

    def pick(lo: torch.Tensor, hi: torch.Tensor) -> tuple[float, float]:
        best = int(torch.argmin(expected_mse(hist, lo, hi, n_levels)))
        return float(lo[best]), float(hi[best])

    lo, hi = pick(lo0 * GRID, hi0 * GRID)
    lo, hi = pick(lo0 * GRID, torch.full_like(GRID, hi))
    return pick(torch.full_like(GRID, lo), hi0 * GRID)


@torch.no_grad()
def weight_mse_init(wq: WeightQuant, weight: torch.Tensor) -> None:
    """Per-channel symmetric scales minimising the weights' own squared error (grid search)."""
    q = wq.quant
    axis = q.axis or 0
    w = weight.detach().movedim(axis, 0).reshape(weight.shape[axis], -1)
    amax = w.abs().amax(1).clamp_min(1e-12)
    best_err = torch.full_like(amax, float("inf"))
    best = amax.clone()
    zero = torch.zeros_like(amax)
    for a in GRID:
        scale = a * amax / q.qmax
        err = ((fake_quant(w, scale, zero, q.qmin, q.qmax, axis=0) - w) ** 2).sum(1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, a * amax, best)
    q.set_range(-best, best)


def _pass(
    model: Separator, batches: Callable[[], Iterator[torch.Tensor]], label: str, progress: bool
) -> int:
    n = 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(label, total=None)
        for mix in batches():
            model(mix)
            n += 1
            bar.advance(task)
    return n


@torch.no_grad()
def calibrate(
    model: Separator,
    batches: Callable[[], Iterator[torch.Tensor]],
    method: str = "minmax",
    percentile: float = 99.99,
    n_bins: int = 2048,
    weight_method: str = "minmax",
    progress: bool = False,
) -> dict[str, tuple[float, float]]:
    """Set every activation quantizer's range from ``batches()`` (mixtures (B, C, T)) and switch
    the quantizers on; returns name -> (lo, hi). ``batches`` is called once per pass (twice for
    ``percentile`` and ``mse``). Weights: ``minmax`` (max |w|) or ``mse`` per channel."""
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")
    if weight_method not in ("minmax", "mse"):
        raise InputError(f"unknown weight range method {weight_method!r}; choose minmax or mse")
    quants = activation_quantizers(model)
    was_training = model.training
    model.eval()
    ranges: dict[str, tuple[float, float]] = {}
    try:
        set_mode(model, "off")
        for q in quants.values():
            q.observer = MinMax()
            q.mode = "observe"
        if quants and _pass(model, batches, "calibrate (min-max)", progress) == 0:
            raise InputError("calibration: the batch stream yielded no mixtures")
        unseen = [n for n, q in quants.items() if q.observer.n == 0]
        if unseen:
            raise InputError(f"calibration: quantizers saw no data: {', '.join(unseen[:5])}")
        ranges = {n: (q.observer.lo, q.observer.hi) for n, q in quants.items()}
        if method != "minmax":
            for name, q in quants.items():
                q.observer = Histogram(*ranges[name], n_bins=n_bins)
            _pass(model, batches, f"calibrate ({method})", progress)
            for name, q in quants.items():
                hist = q.observer
                if method == "percentile":
                    ranges[name] = percentile_range(hist, percentile)
                else:
                    ranges[name] = mse_range(hist, q.qmax - q.qmin + 1)
        for name, q in quants.items():
            q.set_range(*ranges[name])
            q.observer = None
        if weight_method == "mse":
            for wq in weight_quantizers(model).values():
                weight_mse_init(wq, _original_weight(model, wq))
    finally:
        for q in quants.values():
            q.observer = None
        set_mode(model, "quant")
        model.train(was_training)
    return ranges


def _original_weight(model: Separator, wq: WeightQuant) -> torch.Tensor:
    """The float weight a weight quantizer parametrizes."""
    for m in model.modules():
        plist: Any = getattr(m, "parametrizations", None)
        if plist is not None and "weight" in plist and any(p is wq for p in plist["weight"]):
            w: torch.Tensor = plist["weight"].original
            return w
    raise KeyError("weight quantizer not found in the model")


def fake_quant_state(q: FakeQuant) -> dict[str, float]:
    """A per-tensor quantizer's scale and zero point, for stats."""
    return {"scale": float(q.scale[0]), "zero_point": float(q.zero_point[0])}
