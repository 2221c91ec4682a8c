"""Slicing removes exactly the pieces a plan names: removing a piece equals silencing it in the source model."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from transformers import LlamaForCausalLM

from st_drama.pruning import ModelShape, PruningPlan, apply_plan, pruned_config

from .pruning_helpers import (
    full_plan,
    load_model,
    logits,
    make_identity_layer,
    parameter_count,
    sample_ids,
    save_tiny_llama,
    silence_channel,
    silence_heads,
    silence_neuron,
)

VARIANTS = {
    "tied": {},
    "untied-with-biases": {"tie_word_embeddings": False, "attention_bias": True, "mlp_bias": True},
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def source(request, tmp_path_factory):
    folder = save_tiny_llama(tmp_path_factory.mktemp(request.param), **VARIANTS[request.param])
    return load_model(folder)


def test_keeping_everything_reproduces_the_source_logits(source):
    ids = sample_ids(source.config.vocab_size)
    pruned = apply_plan(source, full_plan(source.config))
    torch.testing.assert_close(logits(pruned, ids), logits(source, ids), rtol=0, atol=1e-6)


def test_removing_a_kv_group_equals_silencing_its_heads(source):
    plan = full_plan(source.config)
    plan.kv_heads = [[1]] * 3
    plan.query_heads = [[2, 3]] * 3
    reference = copy.deepcopy(source)
    silence_heads(reference, [0, 1])
    ids = sample_ids(source.config.vocab_size)
    pruned = apply_plan(source, plan)
    assert (pruned.config.num_attention_heads, pruned.config.num_key_value_heads) == (2, 1)
    torch.testing.assert_close(logits(pruned, ids), logits(reference, ids), rtol=1e-5, atol=1e-5)


def test_removing_one_head_per_group_in_one_layer_only_uses_that_layers_choice(source):
    plan = full_plan(source.config)
    plan.query_heads = [[0, 3], [1, 2], [0, 2]]  # per layer: one head from each of the two KV groups
    reference = copy.deepcopy(source)
    for layer, removed in enumerate([[1, 2], [0, 3], [1, 3]]):
        silence_heads(reference, removed, layers=[layer])
    ids = sample_ids(source.config.vocab_size)
    pruned = apply_plan(source, plan)
    assert (pruned.config.num_attention_heads, pruned.config.num_key_value_heads) == (2, 2)
    torch.testing.assert_close(logits(pruned, ids), logits(reference, ids), rtol=1e-5, atol=1e-5)


def test_removing_a_neuron_equals_silencing_it(source):
    plan = full_plan(source.config)
    plan.neurons = [[n for n in range(128) if n != 17]] * 3
    reference = copy.deepcopy(source)
    silence_neuron(reference, 17)
    ids = sample_ids(source.config.vocab_size)
    torch.testing.assert_close(logits(apply_plan(source, plan), ids), logits(reference, ids), rtol=1e-5, atol=1e-5)


def test_removing_a_layer_equals_making_it_the_identity(source):
    plan = full_plan(source.config)
    plan.layers = [0, 2]
    plan.query_heads, plan.kv_heads, plan.neurons = plan.query_heads[:2], plan.kv_heads[:2], plan.neurons[:2]
    reference = copy.deepcopy(source)
    make_identity_layer(reference, 1)
    ids = sample_ids(source.config.vocab_size)
    pruned = apply_plan(source, plan)
    assert [layer.self_attn.layer_idx for layer in pruned.model.layers] == [0, 1]
    torch.testing.assert_close(logits(pruned, ids), logits(reference, ids), rtol=1e-5, atol=1e-5)


def test_removing_channels_equals_zeroing_them_with_the_norms_rescaled(source):
    hidden, removed = source.config.hidden_size, [5, 17, 30, 61]
    plan = full_plan(source.config)
    plan.hidden_channels = [c for c in range(hidden) if c not in removed]
    # The reference's RMSNorms divide by all 64 channels, the pruned ones by the 60 left.
    plan.norm_scales = [math.sqrt(hidden / (hidden - len(removed)))] * 7
    reference = copy.deepcopy(source)
    for channel in removed:
        silence_channel(reference, channel)
    ids = sample_ids(source.config.vocab_size)
    pruned = apply_plan(reference, plan)
    assert pruned.model.embed_tokens.weight.shape == (source.config.vocab_size, 60)
    assert pruned.lm_head.weight.shape == (source.config.vocab_size, 60)
    torch.testing.assert_close(logits(pruned, ids), logits(reference, ids), rtol=1e-4, atol=1e-4)


def test_tied_embeddings_stay_tied_and_untied_stay_separate(source):
    plan = full_plan(source.config)
    plan.hidden_channels = list(range(0, 64, 2))
    pruned = apply_plan(source, plan)
    tied = pruned.lm_head.weight is pruned.model.embed_tokens.weight
    assert tied == source.config.tie_word_embeddings
    torch.testing.assert_close(pruned.lm_head.weight, source.lm_head.weight[:, ::2])


def test_shapes_and_parameter_count_follow_the_config(source):
    plan = PruningPlan(
        layers=[0, 2],
        hidden_channels=list(range(8, 56)),
        query_heads=[[2, 3], [0, 1]],
        kv_heads=[[1], [0]],
        neurons=[list(range(0, 128, 2)), list(range(64))],
    )
    pruned = apply_plan(source, plan)
    shape = ModelShape.from_config(pruned.config)
    assert shape.pruned_sizes() == {
        "num_layers": 2,
        "hidden_size": 48,
        "intermediate_size": 64,
        "num_heads": 2,
        "num_kv_heads": 1,
    }
    assert pruned.config.head_dim == 16  # explicit: 48 / 2 would say 24
    attention = pruned.model.layers[0].self_attn
    assert attention.q_proj.weight.shape == (32, 48)
    assert attention.k_proj.weight.shape == (16, 48)
    assert attention.o_proj.weight.shape == (48, 32)
    assert pruned.model.layers[1].mlp.down_proj.weight.shape == (48, 64)
    assert parameter_count(pruned) == shape.total_parameters()
    assert parameter_count(LlamaForCausalLM(pruned_config(source.config, shape))) == shape.total_parameters()


def test_pruned_model_generates_the_same_with_and_without_the_cache(source):
    plan = full_plan(source.config)
    plan.layers = [1, 2]  # the kept layers are renumbered 0 and 1: the KV cache indexes by layer_idx
    plan.query_heads, plan.kv_heads, plan.neurons = plan.query_heads[:2], plan.kv_heads[:2], plan.neurons[:2]
    pruned = apply_plan(source, plan)
    prompt = sample_ids(source.config.vocab_size, batch=1, length=8)
    generated = pruned.generate(prompt, max_new_tokens=10, do_sample=False, use_cache=True)
    sequence = prompt
    for _ in range(10):
        next_token = logits(pruned, sequence)[:, -1].argmax(dim=-1, keepdim=True)
        sequence = torch.cat([sequence, next_token], dim=1)
    assert torch.equal(generated, sequence)


def test_plans_that_break_gqa_or_differ_per_layer_are_rejected(source):
    broken_groups = full_plan(source.config)
    broken_groups.kv_heads = [[0]] * 3
    broken_groups.query_heads = [[0, 2]] * 3  # head 2 belongs to KV group 1
    with pytest.raises(ValueError, match="GQA grouping would break"):
        apply_plan(source, broken_groups)
    odd_width = full_plan(source.config)
    odd_width.hidden_channels = list(range(63))
    with pytest.raises(ValueError, match="63 hidden channels are not a multiple of the 4 heads"):
        apply_plan(source, odd_width)
    uneven = full_plan(source.config)
    uneven.neurons = [list(range(64)), list(range(32)), list(range(64))]
    with pytest.raises(ValueError, match="same number of FFN neurons"):
        apply_plan(source, uneven)


def test_the_source_model_is_not_changed(source):
    before = {name: tensor.clone() for name, tensor in source.state_dict().items()}
    plan = dataclasses.replace(full_plan(source.config), hidden_channels=list(range(32)))
    apply_plan(source, plan)
    for name, tensor in source.state_dict().items():
        assert torch.equal(tensor, before[name]), name
