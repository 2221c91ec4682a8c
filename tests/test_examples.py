"""Every script in examples/ runs on the embedded default model (SmolLM2-135M) with a tiny step count, so none of
them rots."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT
from evaluation.evaluation_helpers import write_topics_folder
from sentence_transformers import SentenceTransformer

pytestmark = pytest.mark.real_model

EXAMPLES = REPO_ROOT / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_trained_model(folder: Path, embedding_dim: int = 576) -> SentenceTransformer:
    model = SentenceTransformer(str(folder), trust_remote_code=True)
    queries = model.encode_query(["lift of a swept wing"])
    documents = model.encode_document(["lift of a swept wing"])
    assert queries.shape == documents.shape == (1, embedding_dim)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-4)
    return model


@pytest.fixture(scope="module")
def drama_example_model(smollm2_dir, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("drama_example")
    args = ["--max-docs", "12", "--negatives", "2", "--steps", "2", "--batch-size", "4", "--max-seq-length", "48"]
    result = load_example("train_drama_retriever").main([*args, "--output", str(output), "--no-evaluate"])
    return Path(result["model"])


def test_drama_example_trains_a_model_that_reloads(drama_example_model, smollm2_dir):
    from st_drama import build_model

    model = assert_trained_model(drama_example_model)
    # DRAMA's framing in sentence-transformers' own modules: loads without trust_remote_code.
    assert model[0].auto_model.config.is_causal is False and model.prompts["query"] == "Query: "
    reloaded = SentenceTransformer(str(drama_example_model))
    assert np.array_equal(reloaded.encode_document(["wing"]), model.encode_document(["wing"]))
    untrained = build_model(str(smollm2_dir), max_seq_length=48)
    assert not np.allclose(untrained.encode_document(["wing"]), model.encode_document(["wing"]), atol=1e-4)


def test_evaluate_example_scores_the_trained_model_with_mteb(drama_example_model, tmp_path):
    topics = write_topics_folder(tmp_path / "topics")
    result = load_example("evaluate_any_model").main(
        [str(drama_example_model), str(topics), "--output", str(tmp_path / "out"), "--fp32"]
    )
    model_scores = result["results"]["models"]["model"]["tasks"]["topics"]
    assert model_scores["ndcg_at_10"] == pytest.approx(result["plain_ndcg_at_10"], abs=1e-6)
    assert result["results"]["models"]["bm25"]["tasks"]["topics"]["ndcg_at_10"] == pytest.approx(1.0)


def test_llara_example_adapts_then_finetunes(smollm2_dir, tmp_path):
    result = load_example("llara_adapt_then_finetune").main(
        [
            "--max-docs", "8", "--chunk-tokens", "24", "--adapt-steps", "2", "--train-steps", "2",
            "--batch-size", "4", "--output", str(tmp_path), "--no-evaluate",
        ]
    )  # fmt: skip
    model = assert_trained_model(Path(result["model"]))
    assert model[0].prompt_style == "llara"
    assert (tmp_path / "adapted" / "modules.json").is_file()


def test_prune_adapt_train_example_builds_a_smaller_retriever(smollm2_dir, tmp_path):
    result = load_example("prune_adapt_train").main(
        [
            "--params", "20M", "--calibration-tokens", "2000", "--recover-steps", "2", "--llara-steps", "2",
            "--train-steps", "2", "--batch-size", "4", "--max-docs", "8", "--output", str(tmp_path), "--no-evaluate",
        ]
    )  # fmt: skip
    provenance = json.loads((tmp_path / "pruned" / "st_drama_pruning.json").read_text())
    assert provenance["method"] == "importance"
    model = SentenceTransformer(result["model"], trust_remote_code=True)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    assert parameters < 0.6 * 134_515_008
    assert model[0].prompt_style == "llara"
    assert model.encode_query(["lift"]).shape[0] == 1
