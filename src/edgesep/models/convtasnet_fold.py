"""Fold a Conv-TasNet's BatchNorms into its convolutions, for export and inference.

At inference a BatchNorm is a per-channel affine map, so ``conv -> BN`` is one conv with scaled
weights and a shifted bias (:func:`torch.nn.utils.fusion.fuse_conv_bn_weights`), and
``BN -> 1x1 conv`` (the encoder output's norm before the bottleneck) is one conv with its input
columns scaled and its bias shifted. The folded model is a plain Conv-TasNet with
``norm="none"``: it saves, loads, exports and streams like any other, and ONNX Runtime sees
``Conv -> Relu`` pairs that its int8 quantizer fuses.

The in_norm is folded forward into the bottleneck, not back into the encoder: the encoder's
output is also what the masks multiply, which must stay un-normalised.

References: Ioffe & Szegedy, "Batch Normalization", ICML 2015 (the inference-time affine map);
Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018 (folding BN before quantization).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from edgesep.errors import InputError
from edgesep.models.convtasnet import ConvTasNet


def _fold_into_following(conv: nn.Conv1d, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights of the 1x1 ``conv`` applied after ``bn`` (eval), as one conv.

    conv(bn(x)) = W (s * x + t) + b = (W diag(s)) x + (W t + b), s = gamma / sqrt(var + eps),
    t = beta - mean * s. Exact for a 1x1 conv (no zero padding to disturb).

    Shape: conv.weight (C_out, C_in, 1) -> weight (C_out, C_in, 1), bias (C_out,)
    """
    if conv.kernel_size != (1,):
        raise InputError("a BatchNorm folds forward only into a 1x1 conv")
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    weight = conv.weight * scale[None, :, None]
    bias = conv.weight[:, :, 0] @ shift
    if conv.bias is not None:
        bias = bias + conv.bias
    return weight.detach().clone(), bias.detach().clone()


def _fold_into_preceding(
    conv: nn.Conv1d, bn: nn.Module, with_bias: bool = True
) -> dict[str, torch.Tensor]:
    """``bn(conv(x))`` as one conv's weight (and bias): torch's conv-BN fusion."""
    assert isinstance(bn, nn.BatchNorm1d)
    assert bn.running_mean is not None and bn.running_var is not None
    mean = bn.running_mean if with_bias else torch.zeros_like(bn.running_mean)
    beta = bn.bias if with_bias else None
    weight, bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, mean, bn.running_var, bn.eps, bn.weight, beta
    )
    out = {"weight": weight.detach().clone()}
    if with_bias:
        out["bias"] = bias.detach().clone()
    return out


def fold_batchnorm(model: ConvTasNet) -> ConvTasNet:
    """A new model (eval mode) whose BatchNorms are folded into the convs; ``model`` untouched.

    Needs ``norm="BN"`` with ``norm_order="norm_act"`` (a BN after an activation cannot fold)
    and no shared convs (a shared conv cannot absorb each block's own BN). The result has
    ``norm="none"`` and the same eval-mode output (to float rounding).
    """
    c = model.config
    if c.norm != "BN":
        raise InputError(f"fold_batchnorm: the model has norm={c.norm!r}, not 'BN'")
    if c.norm_order != "norm_act":
        raise InputError("fold_batchnorm: needs norm_order='norm_act' (conv -> BN -> act)")
    if c.share_depthwise != "none" or c.share_pointwise != "none":
        raise InputError("fold_batchnorm: a shared conv cannot absorb per-block BatchNorms")
    folded = ConvTasNet(dataclasses.replace(c, norm="none"))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    new: dict[str, torch.Tensor] = {}
    for key in folded.state_dict():
        new[key] = state[key]
    assert isinstance(model.in_norm, nn.BatchNorm1d)
    weight, bias = _fold_into_following(model.bottleneck, model.in_norm)
    new["bottleneck.weight"], new["bottleneck.bias"] = weight, bias
    for i, block in enumerate(model.tcn_blocks()):
        for name, value in _fold_into_preceding(block.in_conv, block.norm1).items():
            new[f"blocks.{i}.in_conv.{name}"] = value
        convs = block.depthwise_convs()
        pyramid = isinstance(block.dconv, nn.ModuleList)
        prefixes = [f"blocks.{i}.dconv" + (f".{j}" if pyramid else "") for j in range(len(convs))]
        for j, (conv, prefix) in enumerate(zip(convs, prefixes, strict=True)):
            # the pyramid's convs are summed before the BN: its shift goes to the biased one
            for name, value in _fold_into_preceding(conv, block.norm2, j == 0).items():
                new[f"{prefix}.{name}"] = value
    folded.load_state_dict(new, strict=True)
    return folded.eval()
