"""Export trained models for devices: ONNX graphs checked against the eager model."""

from edgesep.export.onnx import ParityError, check_parity, export_onnx

__all__ = ["ParityError", "check_parity", "export_onnx"]
