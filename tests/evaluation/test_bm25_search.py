from __future__ import annotations

import math

import mteb
import pytest

from evaluation.evaluation_helpers import TOPIC_DOCUMENTS, write_topics_folder
from st_drama.evaluation.beir_task import BeirRetrievalTask
from st_drama.evaluation.bm25_search import BM25Search


@pytest.fixture
def topics_dir(tmp_path):
    return write_topics_folder(tmp_path / "topics")


def scores_of(model, task) -> dict:
    result = mteb.evaluate(model, task, cache=None, co2_tracker=False, show_progress_bar=False)
    return result.task_results[0].scores["test"][0]


def test_bm25_finds_the_document_sharing_the_query_words(topics_dir):
    scores = scores_of(BM25Search(), BeirRetrievalTask(topics_dir))
    assert math.isclose(scores["ndcg_at_10"], 1.0)
    assert math.isclose(scores["recall_at_100"], 1.0)


def test_english_stopwords_only_for_english(topics_dir):
    for language, expected in (("eng-Latn", "en"), ("ara-Arab", None), ("deu-Latn", None)):
        task = BeirRetrievalTask(topics_dir, language=language)
        task.load_data()
        search = BM25Search()
        search.index(task.dataset["default"]["test"]["corpus"], task_metadata=task.metadata, hf_subset="default")
        assert search.stopwords == expected


def test_search_returns_only_matching_documents_best_first(topics_dir):
    task = BeirRetrievalTask(topics_dir)
    task.load_data()
    split = task.dataset["default"]["test"]
    search = BM25Search()
    search.index(split["corpus"], task_metadata=task.metadata, hf_subset="default")
    results = search.search(split["queries"], top_k=len(TOPIC_DOCUMENTS))
    assert set(results) == set(split["queries"]["id"])
    bread = results["q-bread"]
    assert max(bread, key=bread.get) == "bread"
    assert all(score > 0 for ranked in results.values() for score in ranked.values())
    # A reranking task restricts the candidates.
    restricted = search.search(split["queries"], top_k=10, top_ranked={"q-bread": ["garden", "weather"]})
    assert set(restricted["q-bread"]) <= {"garden", "weather"}


def test_search_before_index_is_an_error():
    with pytest.raises(RuntimeError, match="before index"):
        BM25Search().search({"id": ["q"], "text": ["x"]}, top_k=10)
