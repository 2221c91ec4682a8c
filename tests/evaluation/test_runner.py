from __future__ import annotations

import json
import math

import mteb
import pytest

from evaluation.evaluation_helpers import save_tiny_model, write_framing_folder, write_topics_folder
from st_drama import build_model
from st_drama.evaluation.model_meta import load_model_meta
from st_drama.evaluation.runner import evaluate
from st_drama.precision import cpu_has_native_bf16


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_llama_dir, tmp_path_factory):
    return save_tiny_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny_st_model"))


def test_model_and_baselines_through_mteb_with_all_result_files(tiny_model_dir, tiny_llama_dir, tmp_path):
    topics = write_topics_folder(tmp_path / "topics")
    framing = write_framing_folder(tmp_path / "framing")
    output = tmp_path / "out"
    results = evaluate(
        tiny_model_dir,
        [topics, framing],
        baselines="bm25,backbone",
        output_dir=output,
        backbone=str(tiny_llama_dir),
        bf16=False,
        show_progress=False,
    )
    assert [run.key for run in results.runs] == ["model", "bm25", "backbone"]
    model, bm25, backbone = results.runs
    assert math.isclose(bm25.scores["topics"].ndcg_at_10, 1.0)
    # Queries reach the model through encode_query: "Query: TEXT" meets its twin document.
    assert math.isclose(model.scores["framing"].ndcg_at_10, 1.0)
    # The saved model is the untrained backbone of the same LLM, so the same scoring gives the same numbers.
    for task in ("topics", "framing"):
        assert model.scores[task].ndcg_at_10 == pytest.approx(backbone.scores[task].ndcg_at_10)
        assert model.scores[task].recall_at_100 == pytest.approx(backbone.scores[task].recall_at_100)
    assert model.name != backbone.name

    data = json.loads((output / "results.json").read_text())
    assert data["tasks"] == ["topics", "framing"]
    assert set(data["models"]) == {"model", "bm25", "backbone"}
    topics_scores = data["models"]["bm25"]["tasks"]["topics"]
    assert topics_scores["ndcg_at_10"] == pytest.approx(1.0) and topics_scores["wall_time_s"] > 0
    assert data["models"]["model"]["settings"] == {"bf16": False, "batch_size": 32, "device": "cpu"}
    table = (output / "results.md").read_text()
    assert "| BM25 (`baselines/bm25s`) | 1.000 / 1.000 |" in table
    assert (output / "ndcg_at_10.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = load_model_meta(output / "model_meta.json")
    assert (meta.name, meta.revision) == (model.name, model.revision)  # names the results folder
    for run in results.runs:
        folder = output / "results" / run.name.replace("/", "__") / run.revision
        mteb_result = json.loads((folder / "topics.json").read_text())
        assert mteb_result["scores"]["test"][0]["ndcg_at_10"] == pytest.approx(run.scores["topics"].ndcg_at_10)
        assert (folder / "model_meta.json").is_file()
    # MTEB's own result cache reads the folder (the results repository's layout).
    loaded = mteb.ResultCache(output).load_results(
        models=[meta], tasks=["topics", "framing"], require_model_meta=False
    )
    (model_results,) = loaded.model_results
    assert {result.task_name for result in model_results.task_results} == {"topics", "framing"}


def test_rerun_reuses_results_unless_the_collection_changed(tiny_model_dir, tmp_path):
    topics = write_topics_folder(tmp_path / "topics")
    framing = write_framing_folder(tmp_path / "framing")
    kwargs = dict(baselines="bm25", output_dir=tmp_path / "out", bf16=False, show_progress=False)
    first = evaluate(tiny_model_dir, [topics, framing], **kwargs)
    assert not any(score.cached for run in first.runs for score in run.scores.values())

    second = evaluate(tiny_model_dir, [topics, framing], **kwargs)
    assert all(score.cached for run in second.runs for score in run.scores.values())
    assert second.run("model").scores["framing"].ndcg_at_10 == first.run("model").scores["framing"].ndcg_at_10

    qrels = topics / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("q-python\tpython\t1", "q-python\tgarden\t1"))
    third = evaluate(tiny_model_dir, [topics, framing], **kwargs)
    assert not third.run("bm25").scores["topics"].cached and third.run("bm25").scores["framing"].cached
    assert third.run("bm25").scores["topics"].ndcg_at_10 < 1.0


def test_llm_model_is_its_own_backbone_and_bf16_follows_the_cpu(tiny_llama_dir, tmp_path):
    results = evaluate(
        str(tiny_llama_dir),
        write_topics_folder(tmp_path / "topics"),
        baselines="backbone",
        output_dir=tmp_path / "out",
        show_progress=False,
    )
    assert [run.key for run in results.runs] == ["model"]
    run = results.run("model")
    assert run.settings["bf16"] is cpu_has_native_bf16()
    # Encoding precision is part of the revision: bf16 and fp32 results are kept apart.
    fp32 = evaluate(
        str(tiny_llama_dir), tmp_path / "topics", baselines="", bf16=False, output_dir=tmp_path / "fp32",
        show_progress=False,
    ).run("model")  # fmt: skip
    assert (fp32.revision == run.revision) is not cpu_has_native_bf16()
    assert json.loads((tmp_path / "fp32" / "model_meta.json").read_text())["revision"] == fp32.revision


def test_max_chunks_reaches_the_model_and_keeps_its_results_apart(tiny_llama_dir, tmp_path):
    # Windows need st-drama's backbone (a DRAMA-style model in sentence-transformers' own modules has one window).
    tiny_model_dir = tmp_path / "backbone_model"
    build_model(str(tiny_llama_dir), standard=False).save(str(tiny_model_dir))
    topics = write_topics_folder(tmp_path / "topics")
    kwargs = dict(baselines="", output_dir=tmp_path / "out", bf16=False, show_progress=False, max_seq_length=24)
    truncating = evaluate(tiny_model_dir, topics, **kwargs).run("model")
    chunking = evaluate(tiny_model_dir, topics, max_chunks=3, **kwargs).run("model")
    assert chunking.revision != truncating.revision and not chunking.scores["topics"].cached
    assert json.loads((tmp_path / "out" / "model_meta.json").read_text())["max_tokens"] == 24 * 3


def test_max_chunks_on_a_model_without_an_st_drama_backbone_is_refused():
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize

    from st_drama.evaluation.runner import apply_inference_settings

    with pytest.raises(ValueError, match="max_chunks=2 needs an st-drama LlamaBackbone; this model starts with"):
        apply_inference_settings(SentenceTransformer(modules=[Normalize()]), max_chunks=2)


@pytest.mark.real_model
def test_smollm2_evaluation_on_tiny_folders(smollm2_dir, tmp_path):
    topics = write_topics_folder(tmp_path / "topics")
    framing = write_framing_folder(tmp_path / "framing")
    results = evaluate(
        str(smollm2_dir),
        [topics, framing],
        baselines="bm25",
        output_dir=tmp_path / "out",
        show_progress=False,
        per_query=True,
    )
    model = results.run("model")
    assert math.isclose(model.scores["framing"].ndcg_at_10, 1.0)
    assert model.scores["topics"].ndcg_at_10 > 0.5
    assert (tmp_path / "out" / "results.md").is_file()
    # Each query's score, averaged, is MTEB's; every framing query finds its twin.
    per_query = model.scores["topics"].per_query["default"]
    mean = sum(scores["ndcg_at_10"] for scores in per_query.values()) / len(per_query)
    assert mean == pytest.approx(model.scores["topics"].ndcg_at_10, abs=1e-5)
    assert all(scores["ndcg_at_10"] == 1.0 for scores in model.scores["framing"].per_query["default"].values())
