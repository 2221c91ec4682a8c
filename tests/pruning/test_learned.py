from __future__ import annotations

import logging

import pytest
import torch
from transformers import TrainerCallback

from st_drama.pruning import (
    LearnedMaskConfig,
    MaskedLlama,
    ModelShape,
    PruningMasks,
    PruningTarget,
    fold_masks,
    masks_far_from_target,
    train_masks,
)

from .pruning_helpers import (
    calibration_blocks,
    load_model,
    load_tokenizer,
    logits,
    parameter_count,
    sample_ids,
    save_tiny_llama,
)

TARGET = PruningTarget(num_layers=2, hidden_size=48, intermediate_size=64, num_heads=2, num_kv_heads=1)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_learned"))


@pytest.fixture(scope="module")
def untied_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_learned_untied"), tie_word_embeddings=False, mlp_bias=True)


@pytest.fixture(scope="module")
def blocks(tiny_folder):
    return calibration_blocks(load_tokenizer(tiny_folder), tokens=2048)


def test_masks_learn_the_target_shape_and_fold_to_exactly_it(tiny_folder, blocks, tmp_path):
    model = load_model(tiny_folder)
    shape = TARGET.resolve(model.config)
    # Toy scale: few steps, so the masks learn faster than the defaults (made for real runs) would.
    config = LearnedMaskConfig(steps=40, batch_size=4, mask_learning_rate=0.2, target_warmup=0.4, save_steps=40)
    masked = train_masks(model, shape, blocks, tmp_path / "masks", config, show_progress=False, bf16=False)
    masks = masked.masks
    # The Lagrangian moved every expected size from the source's to close to the target's.
    for kind, expected in masks.expected_sizes().items():
        _, source_size, target_size = masks.specs[kind]
        assert abs(expected.item() - target_size) <= 0.15 * source_size, (kind, expected.item(), target_size)
    assert masks_far_from_target(masks) == []  # so no warning
    pruned, plan = fold_masks(masked)
    assert ModelShape.from_config(pruned.config) == shape
    assert parameter_count(pruned) == shape.total_parameters()
    ids = sample_ids(pruned.config.vocab_size)
    assert torch.isfinite(logits(pruned, ids)).all()
    assert plan.shape(ModelShape.from_config(model.config)) == shape


def test_masks_that_end_far_from_the_target_are_reported_with_the_numbers(tiny_folder, blocks, tmp_path, caplog):
    model = load_model(tiny_folder)
    shape = TARGET.resolve(model.config)
    config = LearnedMaskConfig(steps=1, batch_size=2, save_steps=1)  # one step: the masks barely move
    with caplog.at_level(logging.WARNING, logger="st_drama.pruning"):
        masked = train_masks(model, shape, blocks, tmp_path / "masks", config, show_progress=False, bf16=False)
    far = masks_far_from_target(masked.masks)
    assert far and f"layer: expected 3.0, target {shape.num_layers} (source 3)" in far
    assert "ended far from the target shape" in caplog.text and far[0] in caplog.text


def set_log_alphas(masks: PruningMasks, kept: dict[str, list], fractional: dict[str, list]) -> None:
    """Gates of exactly 1 for ``kept`` pieces, 0 for the rest, and 0.7 for the ``fractional`` ones."""
    with torch.no_grad():
        for kind, mask in masks.masks.items():
            mask.log_alpha.fill_(-10.0)
            for index in kept[kind]:
                mask.log_alpha[index] = 10.0
            for index in fractional.get(kind, []):
                # sigmoid(a) * 1.2 - 0.1 = 0.7  =>  a = logit(2 / 3)
                mask.log_alpha[index] = torch.logit(torch.tensor(2 / 3))


@pytest.mark.parametrize("folder_name", ["tiny_folder", "untied_folder"])
def test_folding_gives_the_masked_model_when_the_masks_sit_at_the_target(folder_name, request):
    model = load_model(request.getfixturevalue(folder_name))
    source = ModelShape.from_config(model.config)
    target = TARGET.resolve(model.config)
    masks = PruningMasks(source, target)
    assert set(masks.masks) == {"layer", "kv_group", "neuron", "channel"}  # 2 heads per kept group: no head mask
    kept_channels = [c for c in range(64) if c % 4 != 1]
    set_log_alphas(
        masks,
        kept={
            "layer": [0, 2],
            "kv_group": [(0, 1), (1, 1), (2, 0)],
            "neuron": [(layer, n) for layer in range(3) for n in range(64, 128)],
            "channel": kept_channels,
        },
        fractional={"layer": [2], "kv_group": [(0, 1)], "neuron": [(0, 70), (2, 100)], "channel": [0, 7]},
    )
    masked = MaskedLlama(model, masks).eval()
    ids = sample_ids(model.config.vocab_size)
    with torch.no_grad():
        expected = masked(ids)["logits"]
    pruned, plan = fold_masks(masked)
    assert plan.layers == [0, 2] and plan.kv_heads == [[1], [0]] and plan.hidden_channels == kept_channels
    torch.testing.assert_close(logits(pruned, ids), expected, rtol=1e-4, atol=1e-4)
    # Folding left the masked model itself as it was.
    with torch.no_grad():
        torch.testing.assert_close(masked(ids)["logits"], expected)


def test_multipliers_rise_while_a_constraint_is_violated(tiny_folder):
    model = load_model(tiny_folder)
    source = ModelShape.from_config(model.config)
    masks = PruningMasks(source, TARGET.resolve(model.config), lagrangian_learning_rate=0.5, initial_penalty=0.0)
    masks.progress = 1.0
    gaps = masks.gaps().detach()
    assert torch.all(gaps > 0)  # everything is still (almost) kept
    penalty = masks.lagrangian(ascend=True)
    assert penalty.item() == 0  # the multipliers started at 0 ...
    torch.testing.assert_close(masks.multipliers[:, 0], 0.5 * gaps)  # ... and ascended along their gradient
    masks.lagrangian().backward()
    # The pressure now pushes every mask logit down (toward removing pieces).
    assert all(torch.all(mask.log_alpha.grad > 0) for mask in masks.masks.values())


class Crash(Exception):
    pass


class CrashAtStep(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Crash


def test_mask_training_resumes_after_an_interruption(tiny_folder, blocks, tmp_path):
    config = LearnedMaskConfig(steps=6, batch_size=2, save_steps=2)
    shape = TARGET.resolve(load_model(tiny_folder).config)

    def run(folder, callbacks=None):
        return train_masks(
            load_model(tiny_folder),
            shape,
            blocks,
            folder,
            config,
            callbacks=callbacks,
            show_progress=False,
            bf16=False,
        )

    uninterrupted = run(tmp_path / "straight")
    with pytest.raises(Crash):
        run(tmp_path / "interrupted", callbacks=[CrashAtStep(3)])
    assert (tmp_path / "interrupted" / "checkpoint-2").is_dir()
    resumed = run(tmp_path / "interrupted")
    for kind, mask in uninterrupted.masks.masks.items():
        torch.testing.assert_close(resumed.masks.masks[kind].log_alpha, mask.log_alpha)
    torch.testing.assert_close(resumed.masks.multipliers, uninterrupted.masks.multipliers)
    torch.testing.assert_close(resumed.model.model.embed_tokens.weight, uninterrupted.model.model.embed_tokens.weight)


def test_a_checkpoint_folder_of_another_run_is_refused(tiny_folder, blocks, tmp_path):
    shape = TARGET.resolve(load_model(tiny_folder).config)
    first = LearnedMaskConfig(steps=2, batch_size=2, save_steps=1)
    train_masks(load_model(tiny_folder), shape, blocks, tmp_path, first, show_progress=False, bf16=False)
    other = LearnedMaskConfig(steps=2, batch_size=2, save_steps=1, mask_learning_rate=0.3)
    with pytest.raises(ValueError, match="checkpoints of a different run"):
        train_masks(load_model(tiny_folder), shape, blocks, tmp_path, other, show_progress=False, bf16=False)
