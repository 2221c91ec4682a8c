"""Pruning the real SmolLM2-135M weights (short: a small calibration budget, a small target)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import BUNDLED_CRANFIELD

from st_drama.cli import main
from st_drama.pruning import ModelShape, PruningTarget, pack_token_blocks, perplexity, prune

pytestmark = pytest.mark.real_model


def cranfield_texts(start: int, stop: int) -> list[str]:
    with open(BUNDLED_CRANFIELD / "corpus.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle][start:stop]
    return [f"{row.get('title', '')} {row['text']}".strip() for row in rows if row["text"].strip()]


def test_the_default_model_prunes_by_name_and_loads_with_plain_transformers(smollm2_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    output = tmp_path / "smollm2-40m"
    argv = ["prune", "smollm2-135m", str(output), "--params", "40M", "--calibration-tokens", "512"]
    assert main([*argv, "--seq-length", "128"]) == 0
    model = AutoModelForCausalLM.from_pretrained(output).eval()
    shape = ModelShape.from_config(model.config)
    assert shape.non_embedding_parameters() <= 40_000_000 and shape.head_dim == 64
    assert sum(parameter.numel() for parameter in model.parameters()) == shape.total_parameters()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 504, 3520, 314, 260, 3777]])).logits
    assert torch.isfinite(logits).all()


def test_importance_pruning_beats_random_pruning_on_held_out_text(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    source = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    settings = dict(
        tokenizer=tokenizer,
        calibration_texts=cranfield_texts(0, 200),
        calibration_tokens=512,
        sequence_length=128,
        show_progress=False,
    )
    target = PruningTarget(num_layers=24, intermediate_size=1024)
    importance = prune(source, target=target, **settings)
    random = prune(source, target=target, method="random", **settings)
    held_out = pack_token_blocks(tokenizer, cranfield_texts(1000, 1100), max_tokens=256, sequence_length=128)
    assert perplexity(importance, held_out, bf16=True) < 0.5 * perplexity(random, held_out, bf16=True)
