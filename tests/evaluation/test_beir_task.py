from __future__ import annotations

import math

import mteb
import pytest

from evaluation.evaluation_helpers import TOPIC_DOCUMENTS, write_topics_folder
from st_drama.corpus import CorpusFormatError, load_qrels
from st_drama.evaluation.beir_task import BeirRetrievalTask, TaskDataUnavailableError, load_tasks


@pytest.fixture
def topics_dir(tmp_path):
    return write_topics_folder(tmp_path / "topics")


class RankingSearch:
    """An MTEB search model that ranks every document by ``score(query_id, doc_id)``."""

    def __init__(self, score, meta_name: str) -> None:
        from mteb.models import ModelMeta

        self.score = score
        self.document_ids: list[str] = []
        self.mteb_model_meta = ModelMeta.create_empty({"name": f"tests/{meta_name}", "revision": "1"})

    def index(self, corpus, **kwargs) -> None:
        self.document_ids = list(corpus["id"])

    def search(self, queries, *, top_k, **kwargs):
        return {
            query_id: {doc_id: float(self.score(query_id, doc_id)) for doc_id in self.document_ids}
            for query_id in queries["id"]
        }


def test_task_metadata_comes_from_the_folder(topics_dir):
    task = BeirRetrievalTask(topics_dir)
    metadata = task.metadata
    assert metadata.name == "topics"
    assert metadata.type == "Retrieval" and metadata.main_score == "ndcg_at_10"
    assert metadata.eval_langs == ["eng-Latn"]  # detected
    assert metadata.eval_splits == ["test"]
    assert BeirRetrievalTask(topics_dir, name="mine", language="deu-Latn").metadata.eval_langs == ["deu-Latn"]


def test_revision_changes_with_the_judgements(topics_dir):
    before = BeirRetrievalTask(topics_dir).metadata.revision
    qrels_file = topics_dir / "qrels" / "test.tsv"
    qrels_file.write_text(qrels_file.read_text() + "q-python\tgarden\t1\n")
    assert BeirRetrievalTask(topics_dir).metadata.revision != before


def test_data_holds_documents_and_only_judged_queries(topics_dir):
    task = BeirRetrievalTask(topics_dir)
    task.load_data()
    split = task.dataset["default"]["test"]
    assert sorted(split["corpus"]["id"]) == sorted(TOPIC_DOCUMENTS)
    assert "q-unjudged" not in split["queries"]["id"]
    assert split["relevant_docs"] == load_qrels(topics_dir)


def test_ideal_ranking_scores_one_and_reversed_ranking_scores_lower(topics_dir):
    qrels = load_qrels(topics_dir)
    task = BeirRetrievalTask(topics_dir)

    def grade(query_id, doc_id):
        return qrels.get(query_id, {}).get(doc_id, 0)

    def main_scores(model):
        result = mteb.evaluate(model, task, cache=None, co2_tracker=False, show_progress_bar=False)
        return result.task_results[0].scores["test"][0]

    ideal = main_scores(RankingSearch(grade, "ideal"))
    reversed_ = main_scores(RankingSearch(lambda q, d: -grade(q, d), "reversed"))
    assert math.isclose(ideal["ndcg_at_10"], 1.0)
    assert math.isclose(ideal["recall_at_100"], 1.0)
    assert reversed_["ndcg_at_10"] < ideal["ndcg_at_10"]
    assert reversed_["mrr_at_10"] < ideal["mrr_at_10"]


def test_malformed_corpus_line_is_named(topics_dir):
    corpus = topics_dir / "corpus.jsonl"
    lines = corpus.read_text().splitlines()
    lines[2] = '{"_id": "broken", "text": '
    corpus.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError, match=r"corpus\.jsonl:3"):
        BeirRetrievalTask(topics_dir)


def test_bad_query_and_qrels_rows_are_named(topics_dir):
    (topics_dir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq-bread\tbread\tvery\n")
    with pytest.raises(CorpusFormatError, match=r"test\.tsv:2.*score"):
        BeirRetrievalTask(topics_dir)
    (topics_dir / "queries.jsonl").write_text('{"_id": "q1", "text": ""}\n')
    with pytest.raises(CorpusFormatError, match=r"queries\.jsonl:1"):
        BeirRetrievalTask(topics_dir)


def test_missing_files_are_named(topics_dir, tmp_path):
    (topics_dir / "qrels" / "test.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"qrels/test\.tsv"):
        BeirRetrievalTask(topics_dir)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_tasks(str(tmp_path / "nowhere"))


def test_bundled_collection_by_name():
    (task,) = load_tasks("cranfield")
    assert task.metadata.name == "cranfield" and task.data_loaded
    assert len(task.dataset["default"]["test"]["corpus"]) == 1400


def test_unknown_name_says_what_a_task_can_be():
    with pytest.raises(ValueError, match=r"not a folder, a bundled collection .* MTEB task or benchmark"):
        load_tasks("NoSuchCollectionOrTask")


def test_named_mteb_task_without_hub_fails_clearly(monkeypatch):
    import datasets
    import huggingface_hub

    # No network here: offline mode makes the hub lookup fail at once instead of after retries.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(TaskDataUnavailableError, match=r"SciFact.*mteb/scifact.*Hugging Face Hub.*local BEIR"):
        load_tasks(["SciFact"])


def test_named_mteb_benchmark_resolves_to_its_tasks_then_fails_clearly_without_hub(monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    first_task = mteb.get_benchmark("MTEB(eng, v2)").tasks[0].metadata.name
    with pytest.raises(TaskDataUnavailableError, match=rf"MTEB task '{first_task}' needs its dataset"):
        load_tasks("MTEB(eng, v2)")
