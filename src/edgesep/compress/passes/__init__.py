"""The registered compression passes, one per module; importing this registers them all."""

from edgesep.compress.passes.cluster import Cluster
from edgesep.compress.passes.distill import Distill
from edgesep.compress.passes.prune_structured import StructuredPrune
from edgesep.compress.passes.prune_unstructured import UnstructuredPrune
from edgesep.compress.passes.sensitivity import Sensitivity
from edgesep.compress.passes.sparsity import GroupSparsity

__all__ = [
    "Cluster",
    "Distill",
    "GroupSparsity",
    "Sensitivity",
    "StructuredPrune",
    "UnstructuredPrune",
]
