"""Band-Split RNN (placeholder; being written)."""
