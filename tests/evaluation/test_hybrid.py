from __future__ import annotations

import pytest

from evaluation.evaluation_helpers import TOPIC_DOCUMENTS, save_tiny_model, write_topics_folder
from st_drama import build_model
from st_drama.evaluation.config import EvaluateConfig, parse_fusions
from st_drama.evaluation.hybrid import FusionConfig, HybridRetriever, fuse
from st_drama.evaluation.runner import evaluate


def test_fusion_settings_are_checked_and_parsed():
    assert parse_fusions("rrf:0.5, rsf") == (FusionConfig("rrf", 0.5), FusionConfig("rsf", 0.3))
    assert FusionConfig() == FusionConfig("rsf", 0.3)
    assert EvaluateConfig(hybrids="dbsf:1").hybrids == (FusionConfig("dbsf", 1.0),)
    assert parse_fusions("none") == ()
    with pytest.raises(ValueError, match=r"hybrid 'borda:0.5': fusion method must be one of"):
        parse_fusions("borda:0.5")
    with pytest.raises(ValueError, match="dense_weight is a share in"):
        FusionConfig(dense_weight=1.5)


def test_relative_score_fusion_min_max_normalises_each_ranking_then_weighs_them():
    dense, bm25 = {"a": 0.9, "b": 0.8, "c": 0.1}, {"c": 12.0, "b": 3.0}
    # dense: a 1, b 0.875, c 0; BM25: c 1, b 0 (a absent); fused 0.3 * dense + 0.7 * BM25.
    assert fuse([dense, bm25], FusionConfig()) == pytest.approx({"a": 0.3, "b": 0.2625, "c": 0.7})
    assert fuse([dense, bm25], FusionConfig("rsf", 1.0)) == pytest.approx({"a": 1.0, "b": 0.875, "c": 0.0})


def test_reciprocal_rank_fusion_weighs_each_ranking():
    dense, bm25 = {"a": 0.9, "b": 0.8, "c": 0.1}, {"c": 12.0, "b": 3.0}
    both = fuse([dense, bm25], FusionConfig("rrf", 0.5, rrf_k=0))
    assert both == pytest.approx({"a": 0.5, "b": 0.25 + 0.25, "c": 0.5 / 3 + 0.5})
    assert max(both, key=both.get) == "c"
    dense_only = fuse([dense, bm25], FusionConfig("rrf", 1.0, rrf_k=0))
    assert sorted(dense_only, key=dense_only.get, reverse=True) == ["a", "b", "c"]


def test_hybrid_retriever_on_a_users_corpus_falls_back_to_either_ranking_at_the_extreme_weights(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir))
    documents = [f"{title} {text}" for title, text in TOPIC_DOCUMENTS.values()]
    query = ["how to bake sourdough bread at home"]
    bm25_side = HybridRetriever(model, documents, FusionConfig("rrf", 0.0)).search(query, top_k=3)[0]
    dense_side = HybridRetriever(model, documents, FusionConfig("rrf", 1.0)).search(query, top_k=3)[0]
    mixed = HybridRetriever(model, documents, FusionConfig("rrf", 0.5)).search(query, top_k=len(documents))[0]
    dense = model.similarity(model.encode_query(query), model.encode_document(documents))[0]
    assert [doc_id for doc_id, _ in dense_side] == [str(i) for i in dense.argsort(descending=True)[:3].tolist()]
    assert documents[int(bm25_side[0][0])].startswith("Baking")  # the one sharing the query's words
    assert {doc_id for doc_id, _ in mixed} == {str(i) for i in range(len(documents))}
    assert [score for _, score in mixed] == sorted((score for _, score in mixed), reverse=True)


def test_evaluate_reports_each_dense_model_fused_with_bm25(tiny_llama_dir, tmp_path):
    model_dir = save_tiny_model(tiny_llama_dir, tmp_path / "model")
    topics = write_topics_folder(tmp_path / "topics")
    results = evaluate(
        model_dir, topics, baselines="bm25", hybrids="rrf:0.5,rrf:0", output_dir=tmp_path / "out", bf16=False,
        show_progress=False,
    )  # fmt: skip
    assert [run.key for run in results.runs] == ["model", "model+bm25:rrf-0.5", "model+bm25:rrf-0", "bm25"]
    scores = {run.key: run.scores["topics"].ndcg_at_10 for run in results.runs}
    # With no weight on the dense ranking, the fusion ranks as BM25 does.
    assert scores["model+bm25:rrf-0"] == pytest.approx(scores["bm25"])
    hybrid = results.run("model+bm25:rrf-0.5")
    assert hybrid.name.endswith("-bm25-rrf-0.5") and hybrid.revision.startswith(results.run("model").revision)
    # The dense embeddings were computed once, by the dense run, and reused from the embedding cache.
    assert any(path.is_file() for path in (tmp_path / "out" / "embeddings").rglob("*"))
    assert "| model + BM25 (rrf-0.5) (`st-drama/model-bm25-rrf-0.5`)" in (tmp_path / "out" / "results.md").read_text()
