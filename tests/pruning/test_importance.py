"""Importance finds the piece that provably does nothing, and pruning it leaves the model's output unchanged."""

from __future__ import annotations

import copy

import pytest
import torch

from st_drama.pruning import ImportanceScores, ModelShape, PruningTarget, apply_plan, collect_importance
from st_drama.pruning import plan_from_scores as make_plan

from .pruning_helpers import (
    calibration_blocks,
    load_model,
    load_tokenizer,
    logits,
    make_identity_layer,
    sample_ids,
    save_tiny_llama,
    silence_channel,
    silence_heads,
    silence_neuron,
)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_importance"))


@pytest.fixture(scope="module")
def blocks(tiny_folder):
    return calibration_blocks(load_tokenizer(tiny_folder), tokens=512)


def prune_with_importance(model, blocks, target: PruningTarget):
    scores = collect_importance(model, blocks, batch_size=4, show_progress=False)
    source = ModelShape.from_config(model.config)
    plan = make_plan(scores, source, target.resolve(model.config))
    return scores, plan, apply_plan(model, plan)


def assert_same_logits(pruned, model):
    ids = sample_ids(model.config.vocab_size)
    torch.testing.assert_close(logits(pruned, ids), logits(model, ids), rtol=1e-4, atol=1e-4)


def test_a_silent_kv_group_is_the_one_removed(tiny_folder, blocks):
    model = load_model(tiny_folder)
    silence_heads(model, [2, 3])  # both query heads of KV group 1, in every layer
    scores, plan, pruned = prune_with_importance(model, blocks, PruningTarget(num_kv_heads=1))
    assert torch.all(scores.head[:, 2:] == 0) and torch.all(scores.head[:, :2] > 0)
    assert plan.kv_heads == [[0]] * 3 and plan.query_heads == [[0, 1]] * 3
    assert_same_logits(pruned, model)


def test_silent_heads_inside_groups_are_the_ones_removed(tiny_folder, blocks):
    model = load_model(tiny_folder)
    silence_heads(model, [1, 2])  # one head of each KV group
    _, plan, pruned = prune_with_importance(model, blocks, PruningTarget(num_heads=2, num_kv_heads=2))
    assert plan.query_heads == [[0, 3]] * 3 and plan.kv_heads == [[0, 1]] * 3
    assert_same_logits(pruned, model)


def test_silent_neurons_are_the_ones_removed(tiny_folder, blocks):
    model = load_model(tiny_folder)
    silent = [5, 17, 33, 50, 77, 90, 101, 127]
    for neuron in silent:
        silence_neuron(model, neuron)
    scores, plan, pruned = prune_with_importance(model, blocks, PruningTarget(intermediate_size=120))
    assert torch.all(scores.neuron[:, silent] == 0)
    assert all(set(range(128)) - set(kept) == set(silent) for kept in plan.neurons)
    assert_same_logits(pruned, model)


def test_silent_channels_are_the_ones_removed(tiny_folder, blocks):
    model = load_model(tiny_folder)
    for channel in (3, 20, 40, 63):
        silence_channel(model, channel)
    scores, plan, pruned = prune_with_importance(model, blocks, PruningTarget(hidden_size=60))
    assert set(range(64)) - set(plan.hidden_channels) == {3, 20, 40, 63}
    assert torch.all(scores.channel[[3, 20, 40, 63]] == 0)
    # The norms are rescaled from the calibration statistics: exact here, since the removed channels are zero.
    assert_same_logits(pruned, model)


def test_an_identity_layer_is_the_one_dropped(tiny_folder, blocks):
    model = load_model(tiny_folder)
    make_identity_layer(model, 1)
    scores, plan, pruned = prune_with_importance(model, blocks, PruningTarget(num_layers=2))
    assert scores.layer[1] == pytest.approx(0, abs=1e-6) and torch.all(scores.layer[[0, 2]] > 1e-3)
    assert plan.layers == [0, 2]
    assert_same_logits(pruned, model)


def test_collection_leaves_the_model_as_it_was(tiny_folder, blocks):
    model = load_model(tiny_folder)
    before = copy.deepcopy(model.state_dict())
    ids = sample_ids(model.config.vocab_size)
    expected = logits(model, ids)
    scores = collect_importance(model, blocks, show_progress=False)
    assert scores.num_tokens == blocks.num_tokens
    assert not any(module._forward_hooks or module._forward_pre_hooks for module in model.modules())
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())
    torch.testing.assert_close(logits(model, ids), expected, rtol=0, atol=0)


def test_scores_have_one_value_per_piece(tiny_folder, blocks):
    model = load_model(tiny_folder)
    scores = collect_importance(model, blocks, show_progress=False)
    assert scores.layer.shape == (3,) and scores.head.shape == (3, 4) and scores.neuron.shape == (3, 128)
    assert scores.channel.shape == (64,) and scores.norm_input_power.shape == (7, 64)
    assert all(torch.isfinite(t).all() and (t >= 0).all() for t in (scores.layer, scores.head, scores.neuron))


def test_random_scores_prune_to_the_same_shape_differently(tiny_folder, blocks):
    model = load_model(tiny_folder)
    source = ModelShape.from_config(model.config)
    target = PruningTarget(num_layers=2, hidden_size=48, intermediate_size=64, num_kv_heads=1).resolve(model.config)
    first = make_plan(ImportanceScores.random(model, torch.Generator().manual_seed(0)), source, target)
    second = make_plan(ImportanceScores.random(model, torch.Generator().manual_seed(1)), source, target)
    assert first.shape(source) == second.shape(source) == target
    assert first.hidden_channels != second.hidden_channels
