"""Compression: passes that make a separation model smaller, pipelines that chain them.

A pass is ``pass(model, ctx) -> PassResult(model, record, stats)`` (see :mod:`.base`); the
registered passes are in :data:`PASSES`. Importing this package registers every pass and the
replayers of the structural ones (so :func:`edgesep.models.artifact.load_artifact` rebuilds
compressed artifacts). Fine-tuning is injected as a ``fit`` callable
(:func:`edgesep.train.finetune.make_fit` builds one); compress never imports train.
"""

from edgesep.compress import passes
from edgesep.compress.base import (
    PASSES,
    EvalFn,
    FitFn,
    LossFn,
    Pass,
    PassContext,
    PassResult,
    clone,
    make_pass,
    pass_name,
    run_pass,
)
from edgesep.compress.losses import DistillLoss, task_loss
from edgesep.compress.pipeline import Recipe, load_recipe, measure, run_pipeline
from edgesep.compress.records import records_of, register_replayer, replay, shapes
from edgesep.models.artifact import load_artifact as load_compressed

__all__ = [
    "PASSES",
    "DistillLoss",
    "EvalFn",
    "FitFn",
    "LossFn",
    "Pass",
    "PassContext",
    "PassResult",
    "Recipe",
    "clone",
    "load_compressed",
    "load_recipe",
    "make_pass",
    "measure",
    "pass_name",
    "passes",
    "records_of",
    "register_replayer",
    "replay",
    "run_pass",
    "run_pipeline",
    "shapes",
    "task_loss",
]

# registers the quantization passes and their replayer (kept last: it imports the names above)
from edgesep.compress import quant as quant
