from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from st_drama.pruning import ModelShape, PruningTarget, PruningTargetError, parse_parameter_count
from st_drama.pruning.target import valid_head_layouts

# SmolLM2-135M's shape: 30 layers, hidden 576, FFN 1536, 9 heads in 3 KV groups, head_dim 64, tied embeddings.
SMOLLM2 = ModelShape(
    num_layers=30,
    hidden_size=576,
    intermediate_size=1536,
    num_heads=9,
    num_kv_heads=3,
    head_dim=64,
    vocab_size=49152,
    tie_word_embeddings=True,
)


def llama_config(shape: ModelShape) -> LlamaConfig:
    return LlamaConfig(
        num_hidden_layers=shape.num_layers,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.head_dim,
        vocab_size=shape.vocab_size,
        tie_word_embeddings=shape.tie_word_embeddings,
        attention_bias=shape.attention_bias,
        mlp_bias=shape.mlp_bias,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("60M", 60_000_000), ("0.1B", 100_000_000), ("250k", 250_000), ("1.5e7", 15_000_000), (42, 42)],
)
def test_parameter_counts_parse(text, expected):
    assert parse_parameter_count(text) == expected


@pytest.mark.parametrize("text", ["sixty", "-5M", "0", "", "5X"])
def test_bad_parameter_counts_are_rejected(text):
    with pytest.raises(ValueError, match="parameter count"):
        parse_parameter_count(text)


@pytest.mark.parametrize(
    "shape",
    [
        dataclasses.replace(SMOLLM2, num_layers=2, vocab_size=100),
        dataclasses.replace(SMOLLM2, num_layers=2, vocab_size=100, tie_word_embeddings=False),
        ModelShape(2, 48, 40, 6, 2, 8, 50, tie_word_embeddings=False, attention_bias=True, mlp_bias=True),
    ],
)
def test_parameter_count_formula_matches_transformers(shape):
    model = LlamaForCausalLM(llama_config(shape))
    assert sum(parameter.numel() for parameter in model.parameters()) == shape.total_parameters()
    embedding = sum(p.numel() for p in (model.model.embed_tokens.weight, model.lm_head.weight))
    embedding = embedding // 2 if shape.tie_word_embeddings else embedding
    assert shape.total_parameters() - shape.non_embedding_parameters() == embedding


def test_empty_target_is_the_source_shape():
    assert PruningTarget().resolve(SMOLLM2) == SMOLLM2


def test_explicit_sizes_are_used_and_the_rest_kept():
    shape = PruningTarget(num_layers=20, intermediate_size=1024).resolve(SMOLLM2)
    assert (shape.num_layers, shape.intermediate_size) == (20, 1024)
    assert (shape.hidden_size, shape.num_heads, shape.num_kv_heads, shape.head_dim) == (576, 9, 3, 64)


def test_heads_alone_drop_whole_kv_groups_and_kv_heads_alone_keep_the_group_size():
    assert PruningTarget(num_heads=6).resolve(SMOLLM2).num_kv_heads == 2
    assert PruningTarget(num_heads=4).resolve(SMOLLM2).num_kv_heads == 2  # 2 per group: no whole-group option
    by_kv = PruningTarget(num_kv_heads=1).resolve(SMOLLM2)
    assert (by_kv.num_heads, by_kv.num_kv_heads) == (3, 1)


@pytest.mark.parametrize("budget", ["20M", "53M", "60M", "100M"])
def test_budget_gives_a_valid_balanced_shape_within_budget(budget):
    shape = PruningTarget(params=budget).resolve(SMOLLM2)
    limit = parse_parameter_count(budget)
    assert shape.non_embedding_parameters() <= limit
    # Rounding leftovers go to FFN neurons, so at most a few neurons' worth stays unspent.
    assert limit - shape.non_embedding_parameters() < shape.num_layers * 3 * shape.hidden_size * 8 + 3 * 576 * 8
    assert (shape.num_heads, shape.num_kv_heads) in valid_head_layouts(SMOLLM2)
    assert shape.hidden_size % shape.num_heads == 0
    llama_config(shape)  # transformers accepts it
    # Balanced: several sizes shrink, none is gutted while another is untouched.
    if limit < SMOLLM2.non_embedding_parameters() * 0.6:
        ratios = [getattr(shape, name) / getattr(SMOLLM2, name) for name in ("num_layers", "hidden_size")]
        ratios.append(shape.intermediate_size / SMOLLM2.intermediate_size)
        assert all(0.3 < ratio < 1 for ratio in ratios)


def test_budget_respects_given_sizes():
    shape = PruningTarget(num_layers=12, num_heads=6, num_kv_heads=2, params="30M").resolve(SMOLLM2)
    assert (shape.num_layers, shape.num_heads, shape.num_kv_heads) == (12, 6, 2)
    assert shape.non_embedding_parameters() <= 30_000_000


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (PruningTarget(num_layers=31), "num_layers=31 is larger than the source's 30"),
        (PruningTarget(hidden_size=1024), "hidden_size=1024 is larger"),
        (PruningTarget(num_layers=0), "num_layers must be a positive integer"),
        (PruningTarget(num_heads=6, num_kv_heads=4), "num_kv_heads=4 is larger"),
        (PruningTarget(num_heads=8, num_kv_heads=2), "needs 4 query heads per KV group"),
        (PruningTarget(num_heads=4, num_kv_heads=3), "does not divide num_heads=4"),
        (PruningTarget(num_heads=9, num_kv_heads=1), "only 3 per group"),
        (PruningTarget(num_heads=7), "num_heads=7 cannot be split"),
        (PruningTarget(hidden_size=500, num_heads=6), "hidden_size=500 is not a multiple of num_heads=6"),
        (PruningTarget(num_heads=5, num_kv_heads=5), "num_kv_heads=5 is larger"),
        (PruningTarget(params="200M"), "exceeds the source's 106,203,456"),
        (PruningTarget(params="lots"), "Not a parameter count"),
        (PruningTarget(num_layers=30, hidden_size=576, params="10k"), "below the smallest shape"),
    ],
)
def test_invalid_targets_are_explained(target, message):
    with pytest.raises(PruningTargetError, match="Invalid pruning target") as error:
        target.resolve(SMOLLM2)
    assert message in str(error.value)


def test_kept_hidden_size_must_still_fit_the_heads():
    with pytest.raises(
        PruningTargetError, match="source's hidden_size=578 \\(kept\\) is not a multiple of num_heads=4"
    ):
        PruningTarget(num_heads=4).resolve(dataclasses.replace(SMOLLM2, hidden_size=578))


def test_every_problem_is_listed_at_once():
    with pytest.raises(PruningTargetError) as error:
        PruningTarget(num_layers=40, intermediate_size=5000).resolve(SMOLLM2)
    assert "num_layers=40" in str(error.value) and "intermediate_size=5000" in str(error.value)


def test_non_llama_configs_are_rejected():
    from transformers import Qwen2Config

    with pytest.raises(PruningTargetError, match="supports Llama models"):
        PruningTarget(num_layers=1).resolve(Qwen2Config(num_hidden_layers=2))


def test_shape_from_config_reads_explicit_head_dim():
    shape = dataclasses.replace(SMOLLM2, num_layers=1, hidden_size=384, num_heads=6, num_kv_heads=2, vocab_size=8)
    config = llama_config(shape)
    assert ModelShape.from_config(config) == shape
    assert LlamaForCausalLM(config).model.layers[0].self_attn.q_proj.weight.shape == torch.Size([6 * 64, 384])
