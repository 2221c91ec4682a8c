from __future__ import annotations

import json

import pytest
from evaluation.evaluation_helpers import save_tiny_model, write_topics_folder

from st_drama.cli import main


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_llama_dir, tmp_path_factory):
    return save_tiny_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny_st_model"))


def test_evaluate_command_writes_the_results(tiny_model_dir, tmp_path, capsys):
    topics = write_topics_folder(tmp_path / "topics")
    output = tmp_path / "out"
    code = main(
        [
            "evaluate",
            str(tiny_model_dir),
            str(topics),
            "--baselines",
            "bm25",
            "--output",
            str(output),
            "--model-name",
            "st-drama/cli-test",
            "--fp32",
            "--batch-size",
            "4",
            "--per-query",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| BM25 (`baselines/bm25s`) | 1.000 / 1.000 |" in printed
    # --per-query: each query's scores kept, and the model compared with BM25 over the same queries.
    assert "nDCG@10 of the model minus each run's, over the same queries" in printed
    bm25_queries = json.loads((output / "results.json").read_text())["models"]["bm25"]["tasks"]["topics"]["per_query"]
    assert set(bm25_queries["default"]) == {"q-bread", "q-galaxy", "q-football", "q-python"}
    data = json.loads((output / "results.json").read_text())
    assert data["models"]["model"]["name"] == "st-drama/cli-test"
    assert data["models"]["model"]["settings"]["bf16"] is False
    assert data["models"]["model"]["settings"]["batch_size"] == 4
    for name in ("results.md", "ndcg_at_10.png", "model_meta.json"):
        assert (output / name).is_file()


def test_bad_folder_fails_with_the_file_and_line(tiny_model_dir, tmp_path, capsys):
    topics = write_topics_folder(tmp_path / "topics")
    (topics / "queries.jsonl").write_text('{"_id": "q-bread", "text": "bread"}\n{"_id": "q-2"}\n')
    code = main(["evaluate", str(tiny_model_dir), str(topics), "--output", str(tmp_path / "out")])
    assert code == 2
    assert "queries.jsonl:2" in capsys.readouterr().err


def test_named_mteb_task_without_hub_fails_with_a_clear_message(tiny_model_dir, tmp_path, capsys, monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    code = main(["evaluate", str(tiny_model_dir), "NFCorpus", "--output", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err
    assert "st-drama evaluate: error: MTEB task 'NFCorpus' needs its dataset" in error
    assert "Hugging Face Hub" in error and "local BEIR-layout folder" in error
    assert not (tmp_path / "out").exists()  # failed before any model ran


def test_unknown_baseline_is_rejected(tiny_model_dir, tmp_path, capsys):
    topics = write_topics_folder(tmp_path / "topics")
    code = main(["evaluate", str(tiny_model_dir), str(topics), "--baselines", "bm25,colbert"])
    assert code == 2
    assert "Unknown baseline 'colbert'" in capsys.readouterr().err
