"""Each query's score in a retrieval evaluation, and paired comparisons of two runs over the same queries.

A mean nDCG@10 over 50 queries moves by a few hundredths when one query's relevant document moves a few ranks, so
"A beats B" on a small collection needs the per-query differences: :func:`paired_difference` gives their mean with
a bootstrap confidence interval and a sign-flip (randomization) test's p-value. The per-query scores come from the
predictions MTEB saves (``mteb.evaluate(..., prediction_folder=...)``), scored by MTEB's own metric code, so their
mean is MTEB's score. The interval says how much a difference depends on which queries happen to be judged; it does
not cover how much a trained model moves when it is trained again (another seed, another precision), which only a
second training shows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# pytrec_eval's names of the two metrics every st-drama table reports, and st-drama's names for them.
PER_QUERY_METRICS = {"ndcg_cut_10": "ndcg_at_10", "recall_100": "recall_at_100"}

# Resampled values drawn at once by paired_difference (a block of 8 MB of float64).
_BLOCK_VALUES = 1_000_000

# {subset: {query id: {metric: score}}}, MTEB's layout of a task (subsets are languages, or "default").
PerQueryScores = dict[str, dict[str, dict[str, float]]]


def per_query_scores(predictions_file: str | os.PathLike, task: Any) -> PerQueryScores:
    """Each judged query's nDCG@10 and Recall@100 in the run MTEB saved to ``predictions_file``, on the evaluation
    split of ``task`` (a loaded retrieval task), computed the way MTEB computes the task's score."""
    # Private to mteb, but it is the function that makes MTEB's own score; using it keeps the two equal.
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

    path = Path(predictions_file)
    predictions = json.loads(path.read_text(encoding="utf-8"))
    split = task.eval_splits[0]
    scores: PerQueryScores = {}
    for subset, splits in task.dataset.items():
        if subset not in predictions or split not in predictions[subset]:
            raise ValueError(f"{path}: no predictions for subset {subset!r}, split {split!r} of {task.metadata.name}.")
        # MTEB scores only queries with at least one judged document, and drops a document sharing the query's id
        # when the task says so.
        qrels = {qid: docs for qid, docs in splits[split]["relevant_docs"].items() if docs}
        results = _without_identical_ids(predictions[subset][split], task.ignore_identical_ids)
        evaluated = calculate_retrieval_scores(results, qrels, [10, 100], task.skip_first_result).all_scores
        scores[subset] = {
            qid: {ours: float(metrics[theirs]) for theirs, ours in PER_QUERY_METRICS.items()}
            for qid, metrics in evaluated.items()
        }
    return scores


def one_metric(queries: Mapping[str, Mapping[str, float]], metric: str = "ndcg_at_10") -> dict[str, float]:
    """``{query id: score}`` of one metric, from one subset's ``{query id: {metric: score}}``."""
    return {qid: scores[metric] for qid, scores in queries.items()}


def _without_identical_ids(results: dict[str, dict[str, float]], ignore: bool) -> dict[str, dict[str, float]]:
    if not ignore:
        return results
    return {qid: {doc: score for doc, score in docs.items() if doc != qid} for qid, docs in results.items()}


@dataclass(frozen=True)
class PairedDifference:
    """The mean over queries of ``a - b`` (averaged per stratum, then over strata), its bootstrap confidence
    interval and the two-sided p-value of a sign-flip test of "no difference"."""

    mean: float
    low: float
    high: float
    p_value: float
    num_queries: int
    confidence: float

    def text(self, digits: int = 3) -> str:
        """``+0.012 [-0.004, +0.027]``: the difference and its interval."""
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def paired_difference(
    strata: Sequence[tuple[Mapping[str, float], Mapping[str, float]]],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Compare two runs query by query.

    Args:
        strata: One ``(a, b)`` pair of ``{query id: score}`` per collection (or subset). Each stratum's difference
            is the mean over its queries; the result is the mean of the strata's differences, the way a suite's
            mean score is the mean of its collections' scores. Queries are resampled within their stratum.
        resamples: Bootstrap resamples and random sign flips.
        confidence: The interval's coverage (percentile bootstrap).
        seed: Seed of the resampling, so the same scores give the same interval.

    Returns:
        The mean difference, its interval and the p-value (the share of sign flips whose mean is at least as far
        from 0 as the observed one, counting the observed one).
    """
    if not strata:
        raise ValueError("paired_difference needs at least one (a, b) pair of per-query scores.")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}.")
    differences = [_stratum_differences(a, b, index) for index, (a, b) in enumerate(strata)]
    generator = np.random.default_rng(seed)
    observed = float(np.mean([stratum.mean() for stratum in differences]))
    bootstrap = np.zeros(resamples)
    flipped = np.zeros(resamples)
    for stratum in differences:
        # In blocks of resamples, so that a collection of thousands of queries stays within a few MB.
        block = max(1, _BLOCK_VALUES // len(stratum))
        for start in range(0, resamples, block):
            rows = min(block, resamples - start)
            picks = generator.integers(0, len(stratum), size=(rows, len(stratum)))
            bootstrap[start : start + rows] += stratum[picks].mean(axis=1)
            signs = generator.choice((-1.0, 1.0), size=(rows, len(stratum)))
            flipped[start : start + rows] += (signs * stratum).mean(axis=1)
    bootstrap /= len(differences)
    flipped /= len(differences)
    tail = (1 - confidence) / 2
    # Round-off can put a flip that only reorders the sum a hair below the observed mean.
    as_extreme = np.abs(flipped) >= abs(observed) - 1e-12
    return PairedDifference(
        mean=observed,
        low=float(np.quantile(bootstrap, tail)),
        high=float(np.quantile(bootstrap, 1 - tail)),
        p_value=float((as_extreme.sum() + 1) / (resamples + 1)),
        num_queries=sum(len(stratum) for stratum in differences),
        confidence=confidence,
    )


def _stratum_differences(a: Mapping[str, float], b: Mapping[str, float], index: int) -> np.ndarray:
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise ValueError(
            f"Stratum {index}: the two runs were scored on different queries (only in a: {only_a[:5]}, only in b: "
            f"{only_b[:5]}); a paired comparison needs the same queries."
        )
    if not a:
        raise ValueError(f"Stratum {index} has no queries.")
    ids = sorted(a)
    return np.array([a[qid] for qid in ids], dtype=float) - np.array([b[qid] for qid in ids], dtype=float)
