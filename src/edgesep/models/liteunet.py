"""Lite U-Net (placeholder; being written)."""
