"""Quantization: fake-quant layers, PTQ calibration, QAT / FQSS passes, SQNR analysis.

Importing this package registers the passes ``quantize-ptq``, ``qat``, ``fqss`` and ``fp16``
and the replayer that rebuilds fake-quantized models on load.
"""

from edgesep.compress.quant.calibrate import calibrate
from edgesep.compress.quant.fakequant import FakeQuant, WeightQuant, fake_quant, qrange
from edgesep.compress.quant.insert import GROUPS, QuantSpec, attach, find_sites, set_mode
from edgesep.compress.quant.ptq import QuantizePTQ, replay_quant
from edgesep.compress.quant.qat import FQSS, QAT, FQSSLoss

__all__ = [
    "FQSS",
    "GROUPS",
    "QAT",
    "FQSSLoss",
    "FakeQuant",
    "QuantSpec",
    "QuantizePTQ",
    "WeightQuant",
    "attach",
    "calibrate",
    "fake_quant",
    "find_sites",
    "qrange",
    "replay_quant",
    "set_mode",
]
