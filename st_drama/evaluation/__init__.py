"""MTEB evaluation: local BEIR folders as MTEB retrieval tasks, named MTEB tasks, baselines (BM25,
all-MiniLM-L6-v2, the untrained backbone) scored by the same code, result tables and charts, and the
``mteb.ModelMeta`` of a leaderboard submission.

Importing this package is cheap; mteb loads when one of the names below is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate": "runner",
    "EvaluateConfig": "config",
    "EvaluationResults": "results",
    "ModelRun": "results",
    "TaskScores": "results",
    "BeirRetrievalTask": "beir_task",
    "TaskDataUnavailableError": "beir_task",
    "load_tasks": "beir_task",
    "BM25Search": "bm25_search",
    "BASELINES": "config",
    "BaselineUnavailableError": "baselines",
    "load_minilm": "baselines",
    "minilm_path": "baselines",
    "STDramaEncoder": "encoders",
    "build_model_meta": "model_meta",
    "model_framing": "model_meta",
    "save_model_meta": "model_meta",
    "markdown_table": "report",
    "PairedDifference": "per_query",
    "paired_difference": "per_query",
    "per_query_scores": "per_query",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
