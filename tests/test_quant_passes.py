"""Quantizer insertion, the quant passes (PTQ, QAT, FQSS, fp16) and their replay on load."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from edgesep.compress import PassContext, make_pass, run_pass, shapes
from edgesep.compress.quant import FQSSLoss, QuantSpec, attach, calibrate, find_sites
from edgesep.compress.quant.insert import activation_quantizers
from edgesep.metrics.sisnr import si_snr
from edgesep.models.artifact import load_artifact, save_artifact
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build


def small_edge() -> Separator:
    torch.manual_seed(0)
    return build("convtasnet-tiny-edge", n_blocks=2, n_repeats=1, n_filters=32, hid_chan=32).eval()


def noise_batches(n: int = 3, seed: int = 0) -> Callable[[], Iterator[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    data = [0.05 * torch.randn(2, 1, 2000, generator=g) for _ in range(n)]
    return lambda: iter(data)


def snr_db(ref: torch.Tensor, est: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).sum() / (ref - est).pow(2).sum()))


def test_sites_quantize_each_tensor_between_layers_once() -> None:
    model = small_edge().for_export()  # BN folded: conv -> identity -> ReLU
    sites = find_sites(model)
    # in_conv feeds act1 through the (identity) norm: one quantizer, after the ReLU
    assert "blocks.0.in_conv" not in sites["act_out"] and "blocks.0.act1" in sites["act_out"]
    # res_conv's output and the residual sum the block returns are quantized where formed...
    assert {"blocks.0.res_conv", "blocks.0", "bottleneck"} <= set(sites["act_out"])
    # ...so the convs reading them need no input quantizer: only the encoder (after padding)
    # and the decoder (after the mask product) have one
    assert sites["act_in"] == ["encoder", "decoder"]
    # the depthwise conv reads act1's (quantized) output directly; the decoder's frames are
    # observed through its tap
    assert "blocks.0.dw_in_tap" not in sites["act_out"] and "decoder.frames_tap" in sites["act_out"]
    assert "blocks.0.dconv" in sites["weights"]


def test_sites_of_a_gln_prelu_model() -> None:
    torch.manual_seed(0)
    model = build("convtasnet-test").eval()  # conv -> PReLU -> gLN
    sites = find_sites(model)
    assert "blocks.0.act1" in sites["act_out"] and "blocks.0.in_conv" not in sites["act_out"]
    # the gLN output is not quantized: the depthwise input is, through the tap
    assert "blocks.0.dw_in_tap" in sites["act_out"]
    assert "bottleneck" in sites["act_in"]  # reads the (float) gLN output of the encoder


@pytest.mark.parametrize(("bits", "low", "high"), [(8, 25.0, 60.0), (4, 0.0, 20.0)])
def test_fake_quant_error_scales_with_bits(bits: int, low: float, high: float) -> None:
    model = small_edge().for_export()
    q = attach(small_edge().for_export(), QuantSpec(bits, bits, bits, bits), find_sites(model))
    calibrate(q, noise_batches())
    x = 0.05 * torch.randn(1, 1, 3001, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        snr = snr_db(model(x), q(x))
    assert low < snr < high


def test_only_the_configured_groups_are_quantized() -> None:
    model = small_edge().for_export()
    q = attach(small_edge().for_export(), QuantSpec(groups=("input", "output")), find_sites(model))
    assert set(activation_quantizers(q)) == {"input_quant", "output_quant"}
    assert not any("parametrizations" in k for k in q.state_dict())


def test_ptq_pass_replays_on_load(tmp_path: Path) -> None:
    model = small_edge()
    ctx = PassContext(calibration=noise_batches(), progress=False)
    result = run_pass(make_pass({"pass": "quantize-ptq", "method": "percentile"}), model, ctx)
    out = result.model
    assert result.record["replay"] is True and out.config.norm == "none"  # BNs folded
    assert result.stats["n_activation_quantizers"] > 0
    save_artifact(out, tmp_path / "q")
    loaded = load_artifact(tmp_path / "q")
    assert shapes(loaded) == shapes(out)
    x = 0.05 * torch.randn(1, 1, 2500, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(loaded(x), out(x))
        # and it is quantized: not the float model's output
        assert 20 < snr_db(model(x), out(x)) < 80


def test_ptq_needs_calibration() -> None:
    with pytest.raises(ValueError, match="calibration"):
        run_pass(make_pass({"pass": "quantize-ptq"}), small_edge(), PassContext(progress=False))


def _stub_fit(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[..., Separator]:
    """A FitFn: a few Adam steps on fixed batches (the real one is train.finetune.make_fit)."""

    def fit(model: Separator, *, steps: int, loss=None, lr=None, on_step=None, seed=0):  # type: ignore[no-untyped-def]
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr or 1e-3)
        model.train()
        for step in range(steps):
            mix, ref = batches[step % len(batches)]
            est = model(mix)[:, :, 0]
            value = loss(model, mix, ref, est) if loss else -si_snr(est, ref).mean()
            opt.zero_grad()
            value.backward()
            opt.step()
        return model.eval()

    return fit


@pytest.mark.parametrize("name", ["qat", "fqss"])
def test_qat_passes_train_weights_and_scales(name: str) -> None:
    model = small_edge()
    g = torch.Generator().manual_seed(1)
    ref = 0.05 * torch.randn(2, 2, 2000, generator=g)
    batches = [(ref.sum(1, keepdim=True), ref)]
    ctx = PassContext(calibration=noise_batches(), fit=_stub_fit(batches), progress=False)
    ptq = run_pass(make_pass({"pass": "quantize-ptq"}), model, ctx).model
    result = run_pass(make_pass({"pass": name, "steps": 3, "lr": 1e-2}), model, ctx)
    trained, before = result.model.state_dict(), ptq.state_dict()
    assert set(before) <= set(trained)
    assert not torch.equal(trained["input_quant.log_scale"], before["input_quant.log_scale"])
    assert not torch.equal(
        trained["blocks.0.in_conv.parametrizations.weight.original"],
        before["blocks.0.in_conv.parametrizations.weight.original"],
    )
    # FQSS adds the residual output stage by default
    assert ("output_residual_quant.log_scale" in trained) == (name == "fqss")
    assert all(p.requires_grad for p in model.parameters())  # the teacher was a copy


def test_qat_needs_fit() -> None:
    ctx = PassContext(calibration=noise_batches(), progress=False)
    with pytest.raises(ValueError, match="fit"):
        run_pass(make_pass({"pass": "qat", "steps": 1}), small_edge(), ctx)


def test_fqss_weights_favour_quantization_sensitive_examples() -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 2, 4000, generator=g)
    teacher_est = ref + 0.01 * torch.randn(2, 2, 4000, generator=g)  # ~40 dB for both
    est = teacher_est.clone()
    est[0] += 0.3 * torch.randn(2, 4000, generator=g)  # example 0 loses ~30 dB when quantized
    loss = FQSSLoss(small_edge())
    w = loss.weights(est, teacher_est, ref)
    assert w.mean().item() == pytest.approx(1.0)
    assert w[0] > 5 * w[1]


def test_fp16_pass_rounds_values_only() -> None:
    model = small_edge()
    result = run_pass(make_pass({"pass": "fp16"}), model, PassContext(progress=False))
    for p in result.model.parameters():
        assert torch.equal(p, p.half().float())
    assert result.record["replay"] is False
    assert 0 < result.stats["max_abs_change"] < 1e-3


def test_streaming_a_quantized_model_applies_its_input_and_output_quantizers() -> None:
    """step() is not forward(): the model-level quantizers (forward hooks) must still apply, so
    the stream equals the offline quantized model, delay for delay."""
    from edgesep.compress.quant.insert import find_sites

    torch.manual_seed(0)
    model = build(
        "convtasnet-tiny-edge", causal=True, n_blocks=2, n_repeats=1, n_filters=32, hid_chan=32
    ).eval()
    spec = QuantSpec(groups=("input", "output"), input_bits=4, output_bits=4)
    q = attach(model, spec, find_sites(model))
    calibrate(q, noise_batches())
    x = 0.05 * torch.randn(1, 1, 1203, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        offline = q(x)
    state, outs, a = q.init_state(), [], 0
    for n in (1, 37, 200, 513, 452):
        y, state = q.step(x[..., a : a + n], state)
        outs.append(y)
        a += n
    d = q.lookahead_samples
    stream = torch.cat(outs, dim=-1)[..., d:]
    torch.testing.assert_close(stream, offline[..., : stream.shape[-1]], atol=1e-6, rtol=0)
    for m in activation_quantizers(q).values():  # the quantizers changed the output
        m.mode = "off"
    with torch.no_grad():
        assert snr_db(q(x), offline) < 40


def test_qat_with_the_real_fit_beats_ptq_at_4_bits(tmp_path: Path) -> None:
    """make_fit on a tone fixture: a model trained to ~7 dB loses ~0.7 dB to 4-bit PTQ and QAT
    wins it back, scored on mixtures neither the training nor the fit's validation used."""
    from edgesep.data.corpus import load_corpus
    from edgesep.data.dynamic import DynamicMixConfig, PoolConfig
    from edgesep.data.mixing import build_mixtures
    from edgesep.data.synth.tones import write_tone_corpus
    from edgesep.evaluate import evaluate
    from edgesep.train.finetune import FitConfig, make_calibration, make_fit

    torch.manual_seed(0)
    corpus = write_tone_corpus(tmp_path / "corpus")
    utts = load_corpus(corpus, "valid")
    valid = build_mixtures(utts, tmp_path / "valid", 2, 8000, seed=0)
    test = build_mixtures(utts, tmp_path / "test", 2, 8000, seed=1)
    data = DynamicMixConfig(
        pools=(PoolConfig(str(corpus), "train", 1.0),), segment_seconds=0.25, epoch_size=8
    )
    cfg = FitConfig(data=data, valid_dirs=(str(valid),), batch_size=2, eval_every=10, lr=3e-3)
    fit = make_fit(cfg, progress=False)
    model = fit(build("convtasnet-test").eval(), steps=400, seed=0)
    ctx = PassContext(calibration=make_calibration(fit, 4, 2), fit=fit, progress=False)

    def score(m: Separator) -> float:
        summary = evaluate(m, test, references=False, progress=False).summary
        return float(summary["systems"]["model"]["si_snri"]["mean"])

    ptq = run_pass(make_pass({"pass": "quantize-ptq", "weight_bits": 4}), model, ctx).model
    qat = run_pass(make_pass({"pass": "qat", "weight_bits": 4, "steps": 60}), model, ctx).model
    fp32, ptq_db, qat_db = score(model), score(ptq), score(qat)
    assert fp32 > 5.0  # trained far enough that 4-bit noise matters
    assert ptq_db < fp32 - 0.3
    assert qat_db > ptq_db + 0.3
