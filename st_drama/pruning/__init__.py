"""Structured pruning of Llama checkpoints to a target shape (importance-based or learned masks), with recovery,
producing standard ``LlamaForCausalLM`` folders.

Importing this package is cheap (the ``st-drama`` command builds its parser from it); torch and transformers load
when one of the names below is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ImportanceScores": "importance",
    "LearnedMaskConfig": "config",
    "METHODS": "config",
    "MaskedLlama": "learned",
    "ModelShape": "target",
    "PROVENANCE_FILE": "pruner",
    "PruneConfig": "config",
    "PruningMasks": "learned",
    "PruningPlan": "slicing",
    "PruningTarget": "target",
    "PruningTargetError": "target",
    "RecoveryConfig": "config",
    "TokenBlocks": "calibration",
    "apply_plan": "slicing",
    "collect_importance": "importance",
    "fold_masks": "learned",
    "masks_far_from_target": "learned",
    "pack_token_blocks": "calibration",
    "parse_parameter_count": "target",
    "perplexity": "language_model_metrics",
    "plan_from_scores": "slicing",
    "prune": "pruner",
    "pruned_config": "slicing",
    "recover": "recovery",
    "token_blocks": "calibration",
    "train_masks": "learned",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
