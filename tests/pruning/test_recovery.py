from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback

from st_drama.pruning import (
    ModelShape,
    PruningTarget,
    RecoveryConfig,
    apply_plan,
    perplexity,
    plan_from_scores,
    recover,
)
from st_drama.pruning.importance import ImportanceScores
from st_drama.pruning.recovery import distillation_loss

from .pruning_helpers import (
    calibration_blocks,
    load_model,
    load_tokenizer,
    save_tiny_llama,
)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_recovery"))


@pytest.fixture(scope="module")
def blocks(tiny_folder):
    return calibration_blocks(load_tokenizer(tiny_folder), tokens=1024)


def pruned_student(teacher):
    source = ModelShape.from_config(teacher.config)
    target = PruningTarget(num_layers=2, hidden_size=48, intermediate_size=64).resolve(teacher.config)
    scores = ImportanceScores.random(teacher, torch.Generator().manual_seed(0))
    return apply_plan(teacher, plan_from_scores(scores, source, target))


@torch.no_grad()
def kl_to_teacher(student, teacher, blocks) -> float:
    batch = torch.stack([block for block in blocks.blocks if block.numel() == blocks.sequence_length][:8])
    student_logits = student(input_ids=batch).logits
    teacher_logits = teacher(input_ids=batch).logits
    return distillation_loss(student_logits, teacher_logits, torch.ones(batch.shape, dtype=torch.bool)).item()


def test_distillation_loss_is_zero_for_identical_logits_and_positive_otherwise():
    logits = torch.randn(2, 5, 11)
    mask = torch.ones(2, 5, dtype=torch.bool)
    assert distillation_loss(logits, logits, mask).item() == pytest.approx(0, abs=1e-6)
    assert distillation_loss(logits, torch.randn(2, 5, 11), mask).item() > 0.01
    masked_out = mask.clone()
    masked_out[1] = False
    changed = logits.clone()
    changed[1] = torch.randn(5, 11)  # differences only at masked-out positions do not count
    assert distillation_loss(changed, logits, masked_out).item() == pytest.approx(0, abs=1e-6)


def test_distillation_brings_the_student_closer_to_the_teacher(tiny_folder, blocks, tmp_path):
    teacher = load_model(tiny_folder)
    student = pruned_student(teacher)
    before = kl_to_teacher(student, teacher, blocks)
    config = RecoveryConfig(steps=12, learning_rate=3e-3, batch_size=4, warmup_steps=0, save_steps=12)
    recovered = recover(student, blocks, tmp_path, config, teacher=teacher, show_progress=False, bf16=False)
    assert not recovered.training
    assert kl_to_teacher(recovered, teacher, blocks) < 0.8 * before


def test_continued_pretraining_lowers_the_perplexity(tiny_folder, blocks, tmp_path):
    teacher = load_model(tiny_folder)
    student = pruned_student(teacher)
    before = perplexity(student, blocks)
    config = RecoveryConfig(steps=12, mode="lm", learning_rate=3e-3, batch_size=4, warmup_steps=0, save_steps=12)
    recover(student, blocks, tmp_path, config, show_progress=False, bf16=False)
    assert perplexity(student, blocks) < 0.8 * before


def test_distillation_needs_the_teacher(tiny_folder, blocks, tmp_path):
    student = pruned_student(load_model(tiny_folder))
    with pytest.raises(ValueError, match="needs the unpruned teacher"):
        recover(student, blocks, tmp_path, RecoveryConfig(steps=2), show_progress=False, bf16=False)


class Crash(Exception):
    pass


class CrashAtStep(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Crash


def test_recovery_resumes_after_an_interruption_and_ends_where_an_uninterrupted_run_ends(
    tiny_folder, blocks, tmp_path
):
    teacher = load_model(tiny_folder)
    config = RecoveryConfig(steps=4, learning_rate=1e-3, batch_size=2, save_steps=2, warmup_steps=2)

    def run(folder, callbacks=None):
        student = pruned_student(teacher)
        return recover(
            student, blocks, folder, config, teacher=teacher, callbacks=callbacks, show_progress=False, bf16=False
        )

    uninterrupted = run(tmp_path / "straight")
    with pytest.raises(Crash):
        run(tmp_path / "interrupted", callbacks=[CrashAtStep(3)])
    assert [path.name for path in (tmp_path / "interrupted").glob("checkpoint-*")] == ["checkpoint-2"]
    resumed = run(tmp_path / "interrupted")
    for (name, expected), actual in zip(
        uninterrupted.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(actual, expected, msg=name)


def test_existing_checkpoints_of_another_run_are_refused(tiny_folder, blocks, tmp_path):
    teacher = load_model(tiny_folder)
    config = RecoveryConfig(steps=2, batch_size=2, save_steps=1)
    recover(pruned_student(teacher), blocks, tmp_path, config, teacher=teacher, show_progress=False, bf16=False)
    other = RecoveryConfig(steps=2, batch_size=2, save_steps=1, learning_rate=1e-3)
    with pytest.raises(ValueError, match="checkpoints of a different run"):
        recover(pruned_student(teacher), blocks, tmp_path, other, teacher=teacher, show_progress=False, bf16=False)
    with pytest.raises(ValueError, match="pass resume=True"):
        recover(
            pruned_student(teacher),
            blocks,
            tmp_path,
            config,
            teacher=teacher,
            resume=False,
            show_progress=False,
            bf16=False,
        )


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"mode": "kd"}, "mode must be one of"), ({"steps": -1}, "steps >= 0"), ({"temperature": 0}, "temperature")],
)
def test_bad_recovery_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        RecoveryConfig(**settings)
