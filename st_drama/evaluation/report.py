"""Writing an evaluation's results: ``results.json``, a markdown table and a bar chart of nDCG@10 per task."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .per_query import one_metric, paired_difference
from .results import MODEL_KEY, EvaluationResults, ModelRun, TaskScores, average_scores

MISSING = "-"


def write_results_json(results: EvaluationResults, path: str | os.PathLike) -> Path:
    """``results.json``: per model (``model``, ``bm25``, ``minilm``, ``backbone``) and task, nDCG@10, Recall@100,
    the main score and timings, plus each model's averages and the run's settings."""
    path = Path(path)
    path.write_text(json.dumps(results.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def markdown_table(results: EvaluationResults) -> str:
    """Scores (nDCG@10 / Recall@100; the main score for non-retrieval tasks) per model and task, with the average
    over tasks, then each model's wall time."""
    average_column = len(results.task_names) > 1
    header = ["model", *results.task_names] + (["average"] if average_column else [])
    lines = [
        "nDCG@10 / Recall@100 (MTEB, trec_eval linear gain)",
        "",
        _row(header),
        _row(["---"] * len(header)),
    ]
    for run in results.runs:
        cells = [_model_cell(run)] + [_score_cell(run, task) for task in results.task_names]
        if average_column:
            averages = average_scores(run, results.task_names)
            cells.append(_pair(averages["ndcg_at_10"], averages["recall_at_100"]))
        lines.append(_row(cells))
    lines += ["", _row(["model", "settings", "load (s)", "evaluation (s, cached results: as first computed)"])]
    lines.append(_row(["---"] * 4))
    for run in results.runs:
        evaluation = sum(_evaluation_time(score) for score in run.scores.values())
        settings = ", ".join(f"{key}={value}" for key, value in run.settings.items())
        lines.append(_row([_model_cell(run), settings, f"{run.load_time_s:.1f}", f"{evaluation:.1f}"]))
    return "\n".join(lines + _paired_lines(results)) + "\n"


def _paired_lines(results: EvaluationResults) -> list[str]:
    """With per-query scores (``EvaluateConfig.per_query``): the model's nDCG@10 minus each other run's, per task
    and over the tasks, with a 95% bootstrap interval over queries and a sign-flip test's p-value."""
    model = next((run for run in results.runs if run.key == MODEL_KEY), None)
    if model is None or not any(score.per_query for score in model.scores.values()):
        return []
    average_column = len(results.task_names) > 1
    header = ["model - run", *results.task_names] + (["average"] if average_column else [])
    lines = [
        "",
        "nDCG@10 of the model minus each run's, over the same queries: mean [95% bootstrap interval], sign-flip p",
        "",
        _row(header),
        _row(["---"] * len(header)),
    ]
    for run in results.runs:
        if run is model:
            continue
        strata_per_task = [_strata(model, run, task) for task in results.task_names]
        cells = [_difference_cell(strata) for strata in strata_per_task]
        if average_column:
            # Every subset of every task weighs as one: the scores' average when each task has one subset.
            every = [stratum for strata in strata_per_task for stratum in strata] if all(strata_per_task) else []
            cells.append(_difference_cell(every))
        lines.append(_row([_model_cell(run), *cells]))
    return lines


def _strata(model: ModelRun, run: ModelRun, task: str) -> list[tuple[dict[str, float], dict[str, float]]]:
    """One (model, run) pair of per-query nDCG@10 per subset of ``task``; empty when either lacks them."""
    ours, theirs = model.scores.get(task), run.scores.get(task)
    if not (ours and theirs and ours.per_query and theirs.per_query):
        return []
    return [(one_metric(queries), one_metric(theirs.per_query[subset])) for subset, queries in ours.per_query.items()]


def _difference_cell(strata: list[tuple[dict[str, float], dict[str, float]]]) -> str:
    if not strata:
        return MISSING
    difference = paired_difference(strata)
    return f"{difference.text()}, p={difference.p_value:.3f}"


def write_table(results: EvaluationResults, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.write_text(markdown_table(results), encoding="utf-8")
    return path


def write_chart(results: EvaluationResults, path: str | os.PathLike) -> Path:
    """A grouped bar chart (PNG) of nDCG@10 per task, one bar per model."""
    # The Figure API without pyplot: no global backend switch in the caller's process (notebooks keep theirs).
    from matplotlib.figure import Figure

    tasks = list(results.task_names)
    groups = [*tasks, "average"] if len(tasks) > 1 else tasks
    width = 0.8 / max(1, len(results.runs))
    figure = Figure(figsize=(max(5.0, 1.4 * len(groups) * max(1, len(results.runs)) ** 0.5), 4.5))
    axes = figure.subplots()
    for index, run in enumerate(results.runs):
        values = [_ndcg(run, task) for task in tasks]
        if len(groups) > len(tasks):
            values.append(average_scores(run, tasks)["ndcg_at_10"])
        positions = [group + (index - (len(results.runs) - 1) / 2) * width for group in range(len(groups))]
        bars = axes.bar(positions, [value or 0.0 for value in values], width, label=run.label)
        for bar, value in zip(bars, values, strict=True):
            text = MISSING if value is None else f"{value:.2f}"
            axes.annotate(
                text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7
            )
    axes.set_xticks(range(len(groups)), groups)
    axes.set_ylabel("nDCG@10")
    axes.set_ylim(0, 1.08)
    axes.set_title("nDCG@10 per task")
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(4, len(results.runs)))
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path


def _evaluation_time(score: TaskScores) -> float:
    """This run's wall time, or for a result taken from the cache the time MTEB recorded when computing it."""
    if score.cached and score.evaluation_time_s is not None:
        return score.evaluation_time_s
    return score.wall_time_s


def _ndcg(run: ModelRun, task: str) -> float | None:
    score = run.scores.get(task)
    if score is None:
        return None
    return score.ndcg_at_10 if score.ndcg_at_10 is not None else score.main_score


def _model_cell(run: ModelRun) -> str:
    return f"{run.label} (`{run.name}`)"


def _score_cell(run: ModelRun, task: str) -> str:
    score = run.scores.get(task)
    if score is None:
        return MISSING
    if score.ndcg_at_10 is None:
        return f"{score.main_score:.3f} ({score.main_metric})"
    return _pair(score.ndcg_at_10, score.recall_at_100)


def _pair(ndcg: float | None, recall: float | None) -> str:
    if ndcg is None:
        return MISSING
    return f"{ndcg:.3f} / {recall:.3f}" if recall is not None else f"{ndcg:.3f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
