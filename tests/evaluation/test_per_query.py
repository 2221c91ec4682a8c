from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.evaluation_helpers import save_tiny_model, write_topics_folder
from st_drama.evaluation import PairedDifference, paired_difference
from st_drama.evaluation.runner import evaluate


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_llama_dir, tmp_path_factory):
    return save_tiny_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny_st_model"))


def _ndcg(run, task: str) -> dict[str, float]:
    return {qid: scores["ndcg_at_10"] for qid, scores in run.scores[task].per_query["default"].items()}


def test_per_query_scores_average_to_mteb_scores_and_survive_a_cached_rerun(tiny_model_dir, tmp_path):
    topics = write_topics_folder(tmp_path / "topics")
    output = tmp_path / "out"
    kwargs = dict(baselines="bm25", hybrids="rsf:0.3", output_dir=output, bf16=False, show_progress=False)
    first = evaluate(tiny_model_dir, topics, per_query=True, **kwargs)
    assert [run.key for run in first.runs] == ["model", "model+bm25:rsf-0.3", "bm25"]
    for run in first.runs:
        per_query = run.scores["topics"].per_query["default"]
        # Only judged queries with a relevant document count, as in MTEB's score.
        assert set(per_query) == {"q-bread", "q-galaxy", "q-football", "q-python"}
        for metric in ("ndcg_at_10", "recall_at_100"):
            mean = np.mean([scores[metric] for scores in per_query.values()])
            assert mean == pytest.approx(getattr(run.scores["topics"], metric), abs=1e-5)
    # The tiny random model ranks badly and BM25 perfectly, so some queries differ: the test can tell them apart.
    assert _ndcg(first.run("model"), "topics") != _ndcg(first.run("bm25"), "topics")
    # results.md compares the model with each run over the same queries.
    difference = paired_difference([(_ndcg(first.run("model"), "topics"), _ndcg(first.run("bm25"), "topics"))])
    bm25_row = next(line for line in (output / "results.md").read_text().splitlines()[-3:] if "bm25s" in line)
    assert f"| {difference.text()}, p={difference.p_value:.3f} |" in bm25_row and difference.mean < 0
    saved = json.loads((output / "results.json").read_text())
    assert saved["models"]["bm25"]["tasks"]["topics"]["per_query"]["default"]["q-bread"]["ndcg_at_10"] == 1.0

    # From MTEB's cache, with the rankings kept under predictions/: the same per-query scores without searching.
    second = evaluate(tiny_model_dir, topics, per_query=True, **kwargs)
    for before, after in zip(first.runs, second.runs, strict=True):
        assert after.scores["topics"].cached
        assert after.scores["topics"].per_query == before.scores["topics"].per_query


def test_a_cached_result_without_its_ranking_is_searched_again(tiny_model_dir, tmp_path):
    topics = write_topics_folder(tmp_path / "topics")
    kwargs = dict(baselines="bm25", output_dir=tmp_path / "out", bf16=False, show_progress=False)
    plain = evaluate(tiny_model_dir, topics, **kwargs)
    assert plain.run("bm25").scores["topics"].per_query is None
    assert not (tmp_path / "out" / "predictions").exists()

    with_queries = evaluate(tiny_model_dir, topics, per_query=True, **kwargs)
    bm25 = with_queries.run("bm25").scores["topics"]
    assert not bm25.cached and set(bm25.per_query["default"]) == {"q-bread", "q-galaxy", "q-football", "q-python"}
    assert bm25.ndcg_at_10 == plain.run("bm25").scores["topics"].ndcg_at_10


def test_paired_difference_of_identical_runs_is_zero():
    scores = {f"q{index}": index / 10 for index in range(10)}
    difference = paired_difference([(scores, dict(scores))])
    assert (difference.mean, difference.low, difference.high) == (0.0, 0.0, 0.0)
    assert difference.p_value == 1.0 and difference.num_queries == 10


def test_paired_difference_of_a_constant_shift_is_that_shift_with_a_small_p_value():
    b = {f"q{index}": index / 100 for index in range(30)}
    a = {qid: score + 0.1 for qid, score in b.items()}
    difference = paired_difference([(a, b)], resamples=2000)
    assert difference.mean == pytest.approx(0.1)
    assert difference.low == pytest.approx(0.1) and difference.high == pytest.approx(0.1)
    # Only flipping no sign (or all of them) reaches 0.1 in size: 2 of 2**30 sign patterns.
    assert difference.p_value == pytest.approx(1 / 2001)
    assert difference.text() == "+0.100 [+0.100, +0.100]"


def test_paired_difference_interval_covers_the_mean_and_narrows_with_more_queries():
    generator = np.random.default_rng(3)

    def noisy_pair(count: int) -> tuple[dict[str, float], dict[str, float]]:
        b = generator.random(count)
        a = b + 0.02 + generator.normal(0, 0.2, count)
        return dict(zip(map(str, range(count)), a, strict=True)), dict(zip(map(str, range(count)), b, strict=True))

    small, large = paired_difference([noisy_pair(40)]), paired_difference([noisy_pair(4000)])
    for difference in (small, large):
        assert difference.low < difference.mean < difference.high
    assert (large.high - large.low) < (small.high - small.low) / 5
    assert large.p_value < 0.01 < small.p_value
    # The same scores and seed give the same interval; another seed resamples differently.
    pair = noisy_pair(40)
    assert paired_difference([pair], seed=1) == paired_difference([pair], seed=1)
    assert paired_difference([pair], seed=2).low != paired_difference([pair], seed=1).low


def test_paired_difference_averages_strata_like_a_suite_mean():
    small = ({"a": 1.0, "b": 1.0}, {"a": 0.0, "b": 0.0})  # +1 on a collection of two queries
    large = ({str(index): 0.0 for index in range(98)}, {str(index): 0.0 for index in range(98)})  # 0 on 98 queries
    difference = paired_difference([small, large], resamples=500)
    # The mean of the collections' means (+0.5), not of the 100 queries (+0.02).
    assert difference.mean == pytest.approx(0.5)
    assert isinstance(difference, PairedDifference) and difference.num_queries == 100


def test_paired_difference_refuses_runs_on_different_queries():
    with pytest.raises(ValueError, match=r"Stratum 0: the two runs were scored on different queries .*'q2'"):
        paired_difference([({"q1": 1.0, "q2": 0.5}, {"q1": 0.0})])
    with pytest.raises(ValueError, match="at least one"):
        paired_difference([])


def test_a_changed_collection_is_scored_on_its_own_ranking(tiny_model_dir, tmp_path):
    topics = write_topics_folder(tmp_path / "topics")
    kwargs = dict(baselines="bm25", output_dir=tmp_path / "out", bf16=False, show_progress=False)
    before = evaluate(tiny_model_dir, topics, per_query=True, **kwargs).run("bm25").scores["topics"]
    assert before.per_query["default"]["q-python"]["ndcg_at_10"] == 1.0
    # The gardening document becomes the python query's text and its only relevant document. A run without
    # per-query scores puts the new result in MTEB's cache and leaves the old ranking (python document first) saved.
    corpus = topics / "corpus.jsonl"
    corpus.write_text(
        corpus.read_text().replace(
            "The gardener planted tomatoes and watered the vegetable garden.", "fixing bugs in python code"
        )
    )
    qrels = topics / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("q-python\tpython\t1", "q-python\tgarden\t1"))
    evaluate(tiny_model_dir, topics, **kwargs)
    after = evaluate(tiny_model_dir, topics, per_query=True, **kwargs).run("bm25").scores["topics"]
    assert not after.cached  # searched again: the saved ranking is of the old collection
    # Scored on the new ranking (the old one would give the gardening document rank 2 or worse).
    assert after.per_query["default"]["q-python"]["ndcg_at_10"] == 1.0
    mean = np.mean([scores["ndcg_at_10"] for scores in after.per_query["default"].values()])
    assert mean == pytest.approx(after.ndcg_at_10, abs=1e-5)


def test_paired_difference_draws_in_blocks_without_changing_small_results(monkeypatch):
    from st_drama.evaluation import per_query

    generator = np.random.default_rng(5)
    a = {str(index): value for index, value in enumerate(generator.random(300))}
    b = {str(index): value for index, value in enumerate(generator.random(300))}
    whole = paired_difference([(a, b)], resamples=1000)
    # Blocks of 3 resamples: other random draws, so a slightly different interval around the same mean.
    monkeypatch.setattr(per_query, "_BLOCK_VALUES", 900)
    blocked = paired_difference([(a, b)], resamples=1000)
    assert blocked.mean == whole.mean
    assert blocked.low == pytest.approx(whole.low, abs=0.02) and blocked.high == pytest.approx(whole.high, abs=0.02)
    assert blocked.low < blocked.mean < blocked.high
