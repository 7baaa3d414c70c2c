"""Export trained models for devices: ONNX graphs checked against the eager model."""

from edgesep.export.onnx import ParityError, check_parity, export_onnx
from edgesep.export.streaming import check_step_parity, export_step_onnx

__all__ = ["ParityError", "check_parity", "check_step_parity", "export_onnx", "export_step_onnx"]
