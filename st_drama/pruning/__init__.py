"""Structured pruning of Llama checkpoints to a target shape (importance-based or learned masks), with recovery,
producing standard ``LlamaForCausalLM`` folders."""

from __future__ import annotations

from .api import METHODS, PROVENANCE_FILE, prune
from .calibration import TokenBlocks, pack_token_blocks, token_blocks
from .importance import ImportanceScores, collect_importance
from .learned import LearnedMaskConfig, MaskedLlama, PruningMasks, fold_masks, train_masks
from .perplexity import perplexity
from .recovery import RecoveryConfig, recover
from .slicing import PruningPlan, apply_plan, plan_from_scores, pruned_config
from .target import ModelShape, PruningTarget, PruningTargetError, parse_parameter_count

__all__ = [
    "METHODS",
    "PROVENANCE_FILE",
    "ImportanceScores",
    "LearnedMaskConfig",
    "MaskedLlama",
    "ModelShape",
    "PruningMasks",
    "PruningPlan",
    "PruningTarget",
    "PruningTargetError",
    "RecoveryConfig",
    "TokenBlocks",
    "apply_plan",
    "collect_importance",
    "fold_masks",
    "pack_token_blocks",
    "parse_parameter_count",
    "perplexity",
    "plan_from_scores",
    "prune",
    "pruned_config",
    "recover",
    "token_blocks",
    "train_masks",
]
