"""What an evaluation measured: per model (the model and each baseline) and task, nDCG@10, Recall@100, the main score
and timings; written by :mod:`st_drama.evaluation.report`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MODEL_KEY = "model"
METRICS = ("ndcg_at_10", "recall_at_100")


@dataclass
class TaskScores:
    """One model's scores on one task, averaged over the task's subsets (languages)."""

    main_metric: str
    main_score: float
    ndcg_at_10: float | None
    recall_at_100: float | None
    wall_time_s: float
    evaluation_time_s: float | None
    phases_s: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    # {subset: {query id: {"ndcg_at_10": ..., "recall_at_100": ...}}} when the evaluation kept them (per_query).
    per_query: dict[str, dict[str, dict[str, float]]] | None = None


@dataclass
class ModelRun:
    """One evaluated model (the model or a baseline) and its scores per task."""

    key: str
    label: str
    name: str
    revision: str
    load_time_s: float
    settings: dict[str, Any]
    scores: dict[str, TaskScores] = field(default_factory=dict)
    skipped_tasks: dict[str, str] = field(default_factory=dict)

    @property
    def total_time_s(self) -> float:
        return self.load_time_s + sum(score.wall_time_s for score in self.scores.values())


@dataclass
class EvaluationResults:
    """What :func:`evaluate` measured and wrote (``files``: ``results_json``, ``table``, ``chart``, ``mteb_results``,
    ``model_meta``)."""

    task_names: list[str]
    runs: list[ModelRun]
    settings: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def run(self, key: str) -> ModelRun:
        """The run with key ``"model"``, ``"bm25"``, ``"minilm"`` or ``"backbone"``."""
        for run in self.runs:
            if run.key == key:
                return run
        raise KeyError(f"No run {key!r}; runs: {[run.key for run in self.runs]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": list(self.task_names),
            "metrics": list(METRICS),
            "settings": self.settings,
            "models": {
                run.key: {
                    "label": run.label,
                    "name": run.name,
                    "revision": run.revision,
                    "settings": run.settings,
                    "load_time_s": run.load_time_s,
                    "total_time_s": run.total_time_s,
                    "tasks": {task: asdict(score) for task, score in run.scores.items()},
                    "skipped_tasks": run.skipped_tasks,
                    "average": average_scores(run, self.task_names),
                }
                for run in self.runs
            },
        }


def average_scores(run: ModelRun, task_names: Sequence[str]) -> dict[str, float | None]:
    """Mean nDCG@10 and Recall@100 over the tasks the run has both for (``None`` when it has none)."""
    averages: dict[str, float | None] = {}
    for metric in METRICS:
        values = [getattr(run.scores[name], metric) for name in task_names if name in run.scores]
        values = [value for value in values if value is not None]
        averages[metric] = sum(values) / len(values) if values and len(values) == len(task_names) else None
    return averages
