from __future__ import annotations

import json

from st_drama.evaluation.report import markdown_table, write_chart, write_results_json, write_table
from st_drama.evaluation.runner import EvaluationResults, ModelRun, TaskScores


def scores(ndcg, recall, main_metric="ndcg_at_10", main=None) -> TaskScores:
    return TaskScores(
        main_metric, main if main is not None else ndcg, ndcg, recall, wall_time_s=2.0, evaluation_time_s=1.5
    )


def sample_results() -> EvaluationResults:
    model = ModelRun("model", "mine", "st-drama/mine", "abc", 1.0, {"bf16": True})
    model.scores = {"alpha": scores(0.5, 0.9), "beta": scores(0.25, 0.5), "sts": scores(None, None, "cosine", 0.7)}
    bm25 = ModelRun("bm25", "BM25", "baselines/bm25s", "def", 0.0, {"k1": 1.5})
    bm25.scores = {"alpha": scores(0.4, 0.8), "beta": scores(0.3, 0.6)}
    bm25.scores["alpha"].cached = True  # taken from the cache: its time is the one first recorded (1.5 s)
    bm25.skipped_tasks = {"sts": "BM25 only runs retrieval tasks"}
    return EvaluationResults(["alpha", "beta", "sts"], [model, bm25], {"mteb": "2"})


def test_table_has_pairs_main_scores_and_gaps():
    table = markdown_table(sample_results())
    assert "| model | alpha | beta | sts | average |" in table
    assert "| mine (`st-drama/mine`) | 0.500 / 0.900 | 0.250 / 0.500 | 0.700 (cosine) | - |" in table
    assert "| BM25 (`baselines/bm25s`) | 0.400 / 0.800 | 0.300 / 0.600 | - | - |" in table
    assert "| mine (`st-drama/mine`) | bf16=True | 1.0 | 6.0 |" in table
    assert "| BM25 (`baselines/bm25s`) | k1=1.5 | 0.0 | 3.5 |" in table


def test_averages_cover_tasks_with_retrieval_scores_only_when_complete():
    results = sample_results()
    results.task_names = ["alpha", "beta"]
    table = markdown_table(results)
    assert "| mine (`st-drama/mine`) | 0.500 / 0.900 | 0.250 / 0.500 | 0.375 / 0.700 |" in table


def test_files_are_written(tmp_path):
    results = sample_results()
    data = json.loads(write_results_json(results, tmp_path / "results.json").read_text())
    assert data["models"]["model"]["tasks"]["alpha"]["ndcg_at_10"] == 0.5
    assert data["models"]["bm25"]["skipped_tasks"] == {"sts": "BM25 only runs retrieval tasks"}
    assert data["models"]["model"]["total_time_s"] == 7.0
    assert write_table(results, tmp_path / "results.md").read_text() == markdown_table(results)
    assert write_chart(results, tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
