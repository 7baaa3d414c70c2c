"""Readers for separation data sets on disk (WSJ0-2mix/3mix, LibriMix, WHAM! layouts)."""

from edgesep.data.datasets.wsj0mix import MixtureDataset, MixtureDir, find_mixture_dir

__all__ = ["MixtureDataset", "MixtureDir", "find_mixture_dir"]
