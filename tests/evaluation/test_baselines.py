from __future__ import annotations

import math

import mteb

from evaluation.evaluation_helpers import write_topics_folder
from st_drama.evaluation.baselines import load_backbone, load_minilm, minilm_path
from st_drama.evaluation.beir_task import BeirRetrievalTask
from st_drama.evaluation.encoders import STDramaEncoder, default_bf16
from st_drama.evaluation.model_meta import build_model_meta


def test_minilm_comes_from_its_wheel_and_ranks_the_topics_right(tmp_path):
    assert (minilm_path() / "model.safetensors").is_file()
    model = load_minilm(device="cpu")
    assert model.get_embedding_dimension() == 384
    assert not default_bf16(model)
    encoder = STDramaEncoder(model, build_model_meta(model, "sentence-transformers/all-MiniLM-L6-v2"))
    task = BeirRetrievalTask(write_topics_folder(tmp_path / "topics"))
    result = mteb.evaluate(encoder, task, cache=None, co2_tracker=False, show_progress_bar=False)
    assert math.isclose(result.task_results[0].scores["test"][0]["ndcg_at_10"], 1.0)


def test_backbone_is_the_untrained_drama_retriever(tiny_llama_dir):
    backbone = load_backbone(str(tiny_llama_dir))
    assert [type(module).__name__ for module in backbone] == ["Transformer", "Pooling", "Normalize"]
    assert backbone[0].auto_model.config.is_causal is False and backbone[1].pooling_mode == "mean"
    assert load_backbone(str(tiny_llama_dir), style="llara")[0].attention == "causal"
