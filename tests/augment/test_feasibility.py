from __future__ import annotations

import logging

import pytest

from st_drama.augment.config import AugmentConfig
from st_drama.augment.feasibility import InfeasibleAugmentationError, feasible_config, minimum_documents
from st_drama.corpus import Document


def documents(count: int, titled: bool = True) -> list[Document]:
    return [
        Document(str(index), f"document {index} talks about wings and lift in a slipstream at speed {index}.",
                 title=f"Title {index}" if titled else "")
        for index in range(count)
    ]  # fmt: skip


def test_a_corpus_too_small_for_the_negative_ranks_is_refused_with_the_numbers_and_options():
    with pytest.raises(InfeasibleAugmentationError) as error:
        feasible_config(AugmentConfig(sources=("crop",)), documents(10))
    message = str(error.value)
    assert "The corpus has 10 documents" in message and "first-stage ranks 30-50 (--negative-ranks)" in message
    assert "needs 7 of them (--negatives): that takes at least 37 documents" in message
    assert minimum_documents(AugmentConfig(sources=("crop",))) == 37
    assert feasible_config(AugmentConfig(sources=("crop",)), documents(37)).mining.negative_ranks == (30, 50)


def test_reranking_judges_its_own_ranks_and_a_depth_beyond_the_corpus_is_lowered(caplog):
    config = AugmentConfig(sources=("crop",), rerank="listwise", mining={"num_negatives": 3})
    with caplog.at_level(logging.WARNING):
        adjusted = feasible_config(config, documents(15))
    assert adjusted.reranking.depth == 15 and "reranking the top 15 instead" in caplog.text
    with pytest.raises(InfeasibleAugmentationError, match=r"reranked ranks 10-20 \(--rerank-negative-ranks\)"):
        feasible_config(config, documents(12))


def test_a_source_that_can_make_nothing_is_dropped_beside_others_and_refused_alone(caplog):
    config = AugmentConfig(sources=("crop", "title"), mining={"num_negatives": 1, "negative_ranks": (3, 5)})
    with caplog.at_level(logging.WARNING):
        assert feasible_config(config, documents(20, titled=False)).sources == ("crop",)
    assert "Dropping the query source(s) ['title']" in caplog.text
    with pytest.raises(InfeasibleAugmentationError, match="source 'title': no document has a title"):
        feasible_config(AugmentConfig(sources=("title",), mining=config.mining), documents(20, titled=False))


def test_missing_models_are_named_before_anything_loads(tmp_path):
    config = AugmentConfig(sources=("synthetic",), llm=str(tmp_path / "no-llm"), mining={"num_negatives": 1})
    with pytest.raises(
        InfeasibleAugmentationError, match=r"--llm .*no-llm.* \(for synthetic queries\) is not a local"
    ):
        feasible_config(config, documents(40))
    config = AugmentConfig(sources=("crop",), retriever=str(tmp_path), rerank="pairrm", mining={"num_negatives": 1})
    with pytest.raises(InfeasibleAugmentationError) as error:
        feasible_config(config, documents(40))
    assert "needs local weights: pass --pairrm-weights" in str(error.value)
    assert "neither 'bm25', 'minilm' nor a local SentenceTransformer folder" in str(error.value)
