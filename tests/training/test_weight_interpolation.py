from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from test_contrastive import RUN, rows
from transformers import AutoConfig, AutoModelForCausalLM

from st_drama import build_model
from st_drama.cli import main
from st_drama.training.contrastive import train
from st_drama.training.weight_interpolation import interpolate_weights, interpolate_with_start, snapshot_weights


def tied_causal_lm(seed: int) -> torch.nn.Module:
    config = AutoConfig.for_model(
        "llama", vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def test_interpolation_lands_on_the_weighted_average_and_moves_tied_weights_once():
    start, trained = tied_causal_lm(seed=0), tied_causal_lm(seed=1)
    start_weights, trained_weights = snapshot_weights(start), snapshot_weights(trained)
    interpolate_weights(trained, start_weights, 0.25)
    for name, tensor in trained.state_dict().items():
        expected = 0.75 * start_weights[name] + 0.25 * trained_weights[name]
        torch.testing.assert_close(tensor, expected, msg=name)
    assert trained.lm_head.weight.data_ptr() == trained.model.embed_tokens.weight.data_ptr()


def test_interpolation_at_one_keeps_the_trained_weights():
    start, trained = tied_causal_lm(seed=0), tied_causal_lm(seed=1)
    trained_weights = snapshot_weights(trained)
    interpolate_weights(trained, snapshot_weights(start), 1.0)
    for name, tensor in trained.state_dict().items():
        assert torch.equal(tensor, trained_weights[name]), name


def test_interpolating_a_saved_model_towards_its_start(tiny_llama_dir, tmp_path):
    start = build_model(str(tiny_llama_dir), style="llara")
    trained_dir = train(str(tiny_llama_dir), Dataset.from_dict(rows(8)), tmp_path, style="llara", **RUN)
    trained = SentenceTransformer(trained_dir, trust_remote_code=True)
    trained_weights = snapshot_weights(trained)
    interpolate_with_start(trained, start, 0.5)
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(tensor, 0.5 * (start.state_dict()[name] + trained_weights[name]), msg=name)


@pytest.mark.parametrize("wise_alpha", [0.0, -0.5, 1.5])
def test_a_share_outside_zero_to_one_is_refused(wise_alpha):
    model = tied_causal_lm(seed=0)
    with pytest.raises(ValueError, match=r"wise_alpha .* in \(0, 1\]"):
        interpolate_weights(model, snapshot_weights(model), wise_alpha)


def test_weights_of_another_shape_are_refused():
    model = tied_causal_lm(seed=0)
    start_weights = snapshot_weights(model)
    start_weights["model.norm.weight"] = torch.ones(8)
    with pytest.raises(ValueError, match=r"model\.norm\.weight: starting shape \(8,\)"):
        interpolate_weights(model, start_weights, 0.5)
    del start_weights["model.norm.weight"]
    with pytest.raises(ValueError, match=r"model\.norm\.weight"):
        interpolate_weights(model, start_weights, 0.5)


@pytest.mark.parametrize("lora", [False, True])
def test_training_with_wise_alpha_saves_the_midpoint_of_start_and_trained(tiny_llama_dir, tmp_path, lora):
    dataset = Dataset.from_dict(rows(16))
    settings = {**RUN, "learning_rate": 1e-3, "lora": lora, "lora_rank": 4}
    trained = train(str(tiny_llama_dir), dataset, tmp_path / "trained", **settings)
    halfway = train(str(tiny_llama_dir), dataset, tmp_path / "halfway", wise_alpha=0.5, **settings)
    start = build_model(str(tiny_llama_dir), max_seq_length=256).state_dict()
    trained_weights = SentenceTransformer(trained, trust_remote_code=True).state_dict()
    halfway_weights = SentenceTransformer(halfway, trust_remote_code=True).state_dict()
    moved = 0
    for name, tensor in halfway_weights.items():
        torch.testing.assert_close(tensor, 0.5 * (start[name] + trained_weights[name]), msg=name)
        moved += not torch.equal(start[name], trained_weights[name])
    assert moved > 0
    assert json.loads(Path(halfway, "st_drama_run.json").read_text())["config"]["wise_alpha"] == 0.5


def test_command_line_wise_alpha(tiny_llama_dir, tmp_path, capsys):
    Dataset.from_dict(rows(8)).to_json(str(tmp_path / "rows.jsonl"))
    arguments = ["train", str(tiny_llama_dir), str(tmp_path / "rows.jsonl"), str(tmp_path / "run"), "--steps", "1",
                 "--batch-size", "4", "--matryoshka-dims", "32", "--no-bf16"]  # fmt: skip
    assert main([*arguments, "--wise-alpha", "0.7"]) == 0
    assert json.loads((tmp_path / "run" / "model" / "st_drama_run.json").read_text())["config"]["wise_alpha"] == 0.7
    assert main([*arguments[:3], str(tmp_path / "other"), *arguments[4:], "--wise-alpha", "2"]) == 2
    assert "wise_alpha" in capsys.readouterr().err


@pytest.mark.real_model
def test_real_model_interpolates_back_towards_the_llm(smollm2_dir, tmp_path):
    # two steps: the first runs at the warm-up's learning rate of zero
    settings = dict(steps=2, batch_size=2, max_seq_length=32, learning_rate=1e-3, bf16=False, show_progress=False)
    dataset = Dataset.from_dict(rows(4))
    trained = SentenceTransformer(train("smollm2-135m", dataset, tmp_path / "trained", **settings),
                                  trust_remote_code=True).state_dict()  # fmt: skip
    halfway = SentenceTransformer(train("smollm2-135m", dataset, tmp_path / "halfway", wise_alpha=0.5, **settings),
                                  trust_remote_code=True).state_dict()  # fmt: skip
    start = build_model("smollm2-135m", max_seq_length=32).state_dict()
    # The decoder's own names (sentence-transformers' Transformer keeps it under "0.model.").
    names = [f"0.model.{name}" for name in ("embed_tokens.weight", "layers.0.mlp.up_proj.weight", "norm.weight")]
    for name in names:
        assert not torch.equal(trained[name], start[name]), name
        torch.testing.assert_close(halfway[name], 0.5 * (start[name] + trained[name]), msg=name)
