"""Learned-mask pruning in the style of Sheared-LLaMA: hard-concrete (L0) masks over layers, KV groups, query heads,
FFN neurons and hidden channels, trained jointly with the language-modelling loss and Lagrangian terms
``lambda1 * (s - t) + lambda2 * (s - t)^2`` that drive each expected size ``s`` to its target ``t``. The multipliers
rise by gradient ascent (plain SGD on ``gap`` and ``gap^2``, done in the forward pass), so the pressure grows
while a constraint is violated and eases once it holds; ``lambda2`` starts high (an augmented-Lagrangian penalty)
so that the expected sizes settle at the target instead of overshooting it.

Masks act through forward hooks on an ordinary ``LlamaForCausalLM``, wrapped in :class:`MaskedLlama` and trained
with a transformers ``Trainer`` (so the usual devices, accelerate and distributed set-ups apply). At the end the
masks are folded: the highest-scoring pieces are kept to exactly the target shape, their deterministic mask values
are multiplied into the weights, and the model is sliced like importance pruning does.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from st_drama.defaults import DEFAULT_SEED
from st_drama.precision import resolve_bf16
from st_drama.runs import checkpoint_step, checkpoint_to_resume

from .calibration import TokenBlocks
from .config import LearnedMaskConfig
from .importance import ImportanceScores, decoder_of
from .slicing import PruningPlan, apply_plan, plan_from_scores
from .target import ModelShape
from .training import BlockCollator, BlockDataset, training_arguments

logger = logging.getLogger(__name__)

# Hard-concrete stretch interval and temperature (Louizos et al., 2018), as in Sheared-LLaMA.
LIMIT_LOW, LIMIT_HIGH, TEMPERATURE = -0.1, 1.1, 2.0 / 3.0
EPSILON = 1e-6
MASKED_WEIGHTS_NAME = "model.safetensors"


class HardConcreteMask(nn.Module):
    """A tensor of hard-concrete gates in ``[0, 1]``: stochastic while training, deterministic in eval."""

    def __init__(self, shape: tuple[int, ...], initial_log_alpha: float) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.full(shape, float(initial_log_alpha)))

    def sample(self) -> torch.Tensor:
        noise = torch.rand_like(self.log_alpha).clamp(EPSILON, 1 - EPSILON)
        logits = (noise.log() - (-noise).log1p() + self.log_alpha) / TEMPERATURE
        return _stretch_and_clip(torch.sigmoid(logits))

    def deterministic(self) -> torch.Tensor:
        return _stretch_and_clip(torch.sigmoid(self.log_alpha))

    def keep_probability(self) -> torch.Tensor:
        """``P(gate > 0)``: summed, the expected number of pieces kept."""
        return torch.sigmoid(self.log_alpha - TEMPERATURE * math.log(-LIMIT_LOW / LIMIT_HIGH))


def _stretch_and_clip(values: torch.Tensor) -> torch.Tensor:
    return (values * (LIMIT_HIGH - LIMIT_LOW) + LIMIT_LOW).clamp(0.0, 1.0)


class PruningMasks(nn.Module):
    """Masks for every size that shrinks from ``source`` to ``target``, with one Lagrangian constraint each."""

    def __init__(
        self,
        source: ModelShape,
        target: ModelShape,
        initial_log_alpha: float = 3.0,
        lagrangian_learning_rate: float = 0.5,
        initial_penalty: float = 50.0,
    ) -> None:
        super().__init__()
        self.source, self.target = source, target
        layers, groups, per_group = source.num_layers, source.num_kv_heads, source.group_size
        # kind -> (mask shape, source size, target size) of each constraint.
        self.specs = {
            "layer": ((layers,), layers, target.num_layers),
            "kv_group": ((layers, groups), groups, target.num_kv_heads),
            "head": ((layers, groups, per_group), per_group, target.num_heads // target.num_kv_heads),
            "neuron": ((layers, source.intermediate_size), source.intermediate_size, target.intermediate_size),
            "channel": ((source.hidden_size,), source.hidden_size, target.hidden_size),
        }
        self.masks = nn.ModuleDict(
            {
                kind: HardConcreteMask(shape, initial_log_alpha)
                for kind, (shape, source_size, target_size) in self.specs.items()
                if target_size < source_size
            }
        )
        # Row k: (lambda1, lambda2) of the k-th mask kind. A buffer, not a parameter: the optimizer minimises,
        # the multipliers ascend (see lagrangian); being in the state dict, they are checkpointed.
        self.register_buffer("multipliers", torch.zeros(len(self.masks), 2))
        self.multipliers[:, 1] = initial_penalty
        self.lagrangian_learning_rate = lagrangian_learning_rate
        self.progress = 1.0  # fraction of the target warmup done; set by MaskTargetWarmup
        self.current: dict[str, torch.Tensor] = {}

    def draw(self, training: bool) -> None:
        """Fix the gates for one forward pass (a fresh sample in training, the deterministic values in eval)."""
        self.current = {kind: mask.sample() if training else mask.deterministic() for kind, mask in self.masks.items()}

    def gate(self, kind: str) -> torch.Tensor | None:
        return self.current.get(kind)

    def expected_sizes(self) -> dict[str, torch.Tensor]:
        """Expected kept count per constraint: layers in total, the rest per layer (averaged over layers)."""
        sizes = {}
        for kind, mask in self.masks.items():
            probability = mask.keep_probability()
            if kind in ("layer", "channel"):
                sizes[kind] = probability.sum()
            else:
                sizes[kind] = probability.sum(dim=-1).mean()
        return sizes

    def current_targets(self) -> dict[str, float]:
        targets = {}
        for kind in self.masks:
            _, source_size, target_size = self.specs[kind]
            targets[kind] = source_size + (target_size - source_size) * min(1.0, self.progress)
        return targets

    def gaps(self) -> torch.Tensor:
        """Expected minus target size per mask kind, as a fraction of the source size."""
        targets = self.current_targets()
        expected = self.expected_sizes()
        return torch.stack([(expected[kind] - targets[kind]) / self.specs[kind][1] for kind in self.masks])

    def lagrangian(self, ascend: bool = False) -> torch.Tensor:
        """``sum(lambda1 * gap + lambda2 * gap^2)``; with ``ascend``, then take one gradient-ascent step on the
        multipliers (the gradients of this sum with respect to them are ``gap`` and ``gap^2``)."""
        if not len(self.masks):
            return self.multipliers.sum()
        gaps = self.gaps()
        multipliers = self.multipliers.to(gaps.device, copy=True)  # the ascent below updates the buffer in place
        total = (multipliers[:, 0] * gaps + multipliers[:, 1] * gaps * gaps).sum()
        if ascend:
            with torch.no_grad():
                step = torch.stack([gaps.detach(), gaps.detach().square()], dim=1)
                self.multipliers.add_(self.lagrangian_learning_rate * step.to(self.multipliers))
        return total

    def multiplier_values(self) -> dict[str, tuple[float, float]]:
        return {kind: tuple(self.multipliers[row].tolist()) for row, kind in enumerate(self.masks)}

    def scores(self) -> ImportanceScores:
        """The mask logits as importance scores (unmasked sizes score 0: all of them are kept)."""
        source = self.source
        log_alphas = {kind: mask.log_alpha.detach().float().cpu() for kind, mask in self.masks.items()}
        layers = source.num_layers
        return ImportanceScores(
            layer=log_alphas.get("layer", torch.zeros(layers)),
            head=log_alphas.get("head", torch.zeros(layers, source.num_kv_heads, source.group_size)).reshape(
                layers, source.num_heads
            ),
            kv_group=log_alphas.get("kv_group"),
            neuron=log_alphas.get("neuron", torch.zeros(layers, source.intermediate_size)),
            channel=log_alphas.get("channel", torch.zeros(source.hidden_size)),
        )


class MaskedLlama(nn.Module):
    """A ``LlamaForCausalLM`` whose layers, heads, neurons and channels are gated by :class:`PruningMasks`.

    The forward pass returns the LM loss plus the Lagrangian as ``loss`` (and the plain ``lm_loss``)."""

    def __init__(self, model: nn.Module, masks: PruningMasks) -> None:
        super().__init__()
        self.model = model
        self.masks = masks
        self._handles: list[Any] = []
        self.attach_hooks()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        self.masks.draw(self.training)
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, use_cache=False)
        result = {"logits": outputs.logits}
        if labels is not None:
            penalty = self.masks.lagrangian(ascend=self.training)
            result.update(loss=outputs.loss + penalty, lm_loss=outputs.loss.detach(), lagrangian=penalty.detach())
        return result

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def attach_hooks(self) -> None:
        self.remove_hooks()
        self._handles = self._hooks()

    def _hooks(self) -> list[Any]:
        decoder = decoder_of(self.model)
        handles = [decoder.embed_tokens.register_forward_hook(self._scale_output(None))]
        for index, layer in enumerate(decoder.layers):
            handles.append(layer.self_attn.o_proj.register_forward_pre_hook(self._gate_heads(index)))
            handles.append(layer.self_attn.o_proj.register_forward_hook(self._scale_output(index)))
            handles.append(layer.mlp.down_proj.register_forward_pre_hook(self._gate_neurons(index)))
            handles.append(layer.mlp.down_proj.register_forward_hook(self._scale_output(index)))
        return handles

    def _head_gates(self, index: int) -> torch.Tensor | None:
        """One gate per query head of layer ``index``: its own gate times its KV group's gate."""
        head, group = self.masks.gate("head"), self.masks.gate("kv_group")
        source = self.masks.source
        if head is None and group is None:
            return None
        gates = head[index] if head is not None else torch.ones(source.num_kv_heads, source.group_size)
        if group is not None:
            gates = gates.to(group.device) * group[index].unsqueeze(-1)
        return gates.reshape(-1)

    def _gate_heads(self, index: int) -> Callable:
        def hook(module: nn.Linear, args: tuple) -> tuple | None:
            gates = self._head_gates(index)
            if gates is None:
                return None
            attention_output = args[0]
            per_head = attention_output.unflatten(-1, (gates.numel(), -1))
            gated = per_head * gates.to(per_head.dtype).unsqueeze(-1)
            return (gated.flatten(-2), *args[1:])

        return hook

    def _gate_neurons(self, index: int) -> Callable:
        def hook(module: nn.Linear, args: tuple) -> tuple | None:
            neuron = self.masks.gate("neuron")
            if neuron is None:
                return None
            return (args[0] * neuron[index].to(args[0].dtype), *args[1:])

        return hook

    def _scale_output(self, index: int | None) -> Callable:
        """Gate what a module writes into the residual stream: by channel, and (in a layer) by the layer gate."""

        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            channel, layer = self.masks.gate("channel"), self.masks.gate("layer")
            scale = channel
            if index is not None and layer is not None:
                scale = layer[index] if scale is None else scale * layer[index]
            if scale is None:
                return None
            return output * scale.to(output.dtype)

        return hook


class MaskTargetWarmup(TrainerCallback):
    """Moves the masks' targets from the source shape to the final one over the first part of training."""

    def __init__(self, masks: PruningMasks, warmup_steps: int) -> None:
        self.masks = masks
        self.warmup_steps = warmup_steps

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.masks.progress = 1.0 if self.warmup_steps == 0 else state.global_step / self.warmup_steps


class MaskTrainer(Trainer):
    """A ``Trainer`` with separate learning rates for the model and the mask logits, that checkpoints the
    (non-``PreTrainedModel``) masked model's weights."""

    def __init__(self, *args: Any, mask_learning_rate: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mask_learning_rate = mask_learning_rate

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            masked: MaskedLlama = self.model
            groups = [{"params": list(masked.masks.masks.parameters()), "lr": self.mask_learning_rate}]
            weights = [parameter for parameter in masked.model.parameters() if parameter.requires_grad]
            if weights:
                groups.append({"params": weights, "lr": self.args.learning_rate})
            self.optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate, weight_decay=0.0)
        return self.optimizer

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        from safetensors.torch import save_model

        output_dir = output_dir or self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        # save_model drops the duplicate name of tied weights, which save_file refuses.
        save_model(self.accelerator.unwrap_model(self.model), os.path.join(output_dir, MASKED_WEIGHTS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        from safetensors.torch import load_model

        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        device = next(target.parameters()).device
        load_model(target, os.path.join(resume_from_checkpoint, MASKED_WEIGHTS_NAME), device=str(device))


def train_masks(
    model: nn.Module,
    target: ModelShape,
    train_blocks: TokenBlocks,
    checkpoint_dir: str | os.PathLike,
    config: LearnedMaskConfig,
    pad_token_id: int | None = None,
    resume: bool = True,
    run_settings: dict[str, Any] | None = None,
    callbacks: list[TrainerCallback] | None = None,
    show_progress: bool = True,
    seed: int = DEFAULT_SEED,
    bf16: bool | None = None,
) -> MaskedLlama:
    """Train masks (and, unless ``config.learning_rate == 0``, the weights of ``model``, in place) toward
    ``target``. Returns the masked model; fold it with :func:`fold_masks`. ``seed`` seeds the data order and the
    mask noise; ``bf16`` is autocast (default: where it is fast)."""
    source = ModelShape.from_config(model.config)
    bf16 = resolve_bf16(bf16)
    torch.manual_seed(seed)
    masks = PruningMasks(
        source, target, config.initial_log_alpha, config.lagrangian_learning_rate, config.initial_penalty
    )
    model.requires_grad_(config.learning_rate > 0)
    masked = MaskedLlama(model, masks)
    settings = {
        "learned": config.to_dict(),
        "target": target.to_dict(),
        "seed": seed,
        "bf16": bf16,
        **(run_settings or {}),
    }
    checkpoint = checkpoint_to_resume(checkpoint_dir, settings, resume)
    if pad_token_id is None:
        pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    arguments = training_arguments(
        checkpoint_dir,
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate or config.mask_learning_rate,
        save_steps=config.save_steps,
        seed=seed,
        bf16=bf16,
        show_progress=show_progress,
        max_grad_norm=0.0,
    )
    warmup = MaskTargetWarmup(masks, round(config.steps * config.target_warmup))
    trainer = MaskTrainer(
        model=masked,
        args=arguments,
        train_dataset=BlockDataset(train_blocks),
        data_collator=BlockCollator(pad_token_id),
        callbacks=[warmup, *(callbacks or [])],
        mask_learning_rate=config.mask_learning_rate,
    )
    if checkpoint is not None and checkpoint_step(checkpoint) >= config.steps:
        # The run had finished training; resuming would take one step too many.
        trainer._load_from_checkpoint(checkpoint)
    else:
        trainer.train(resume_from_checkpoint=checkpoint)
    expected = {kind: round(size.item(), 1) for kind, size in masks.expected_sizes().items()}
    logger.info(f"Learned masks over {config.steps} steps; expected sizes {expected}.")
    if far := masks_far_from_target(masks):
        logger.warning(
            f"The learned masks ended far from the target shape ({'; '.join(far)}): folding keeps the pieces with "
            "the highest mask scores, but the masks did not learn which to drop. Train them longer "
            "(--learned-steps / LearnedMaskConfig.steps) or with a higher lagrangian_learning_rate."
        )
    masked.eval()
    return masked


# A mask kind whose expected kept size misses its target by more than this share of the pieces removed is "far".
FAR_FROM_TARGET = 0.25


def masks_far_from_target(masks: PruningMasks) -> list[str]:
    """``"layer: expected 29.7, target 12 (source 30)"`` for each mask kind whose expected size missed the target
    by more than a quarter of the pieces to remove."""
    far = []
    for kind, size in masks.expected_sizes().items():
        _, source_size, target_size = masks.specs[kind]
        removed = source_size - target_size
        if removed > 0 and abs(size.item() - target_size) > FAR_FROM_TARGET * removed:
            far.append(f"{kind}: expected {size.item():.1f}, target {target_size} (source {source_size})")
    return far


@torch.no_grad()
def fold_masks(masked: MaskedLlama) -> tuple[nn.Module, PruningPlan]:
    """A standard model of exactly the target shape from a masked model: keep the pieces with the highest mask
    logits, multiply their deterministic gates into the weights, slice. When the masks already sit at the target
    (every removed piece gated to 0), the result computes what the masked model computes in eval mode."""
    masks = masked.masks
    masks.draw(training=False)
    # The copy must not carry the mask hooks (deepcopy would copy them along with the modules).
    masked.remove_hooks()
    try:
        scaled = copy.deepcopy(masked.model)
    finally:
        masked.attach_hooks()
    _fold_gates_into_weights(scaled, masked)
    source, target = masks.source, masks.target
    plan = plan_from_scores(masks.scores(), source, target, rescale_norms=False)
    # Removed channels are (ideally) zero in the masked residual stream, yet the masked RMSNorms divided by the
    # full width: rescaling by sqrt(full / kept) makes the pruned norms divide by the same value.
    scale = math.sqrt(source.hidden_size / target.hidden_size)
    plan.norm_scales = [scale] * (2 * target.num_layers + 1)
    return apply_plan(scaled, plan), plan


def _fold_gates_into_weights(model: nn.Module, masked: MaskedLlama) -> None:
    masks = masked.masks
    decoder = decoder_of(model)
    channel, layer_gates, neuron = masks.gate("channel"), masks.gate("layer"), masks.gate("neuron")
    for index, layer in enumerate(decoder.layers):
        o_proj, down_proj = layer.self_attn.o_proj, layer.mlp.down_proj
        head_gates = masked._head_gates(index)
        if head_gates is not None:
            head_dim = o_proj.weight.shape[1] // head_gates.numel()
            o_proj.weight.mul_(head_gates.repeat_interleave(head_dim).to(o_proj.weight))
        if neuron is not None:
            down_proj.weight.mul_(neuron[index].to(down_proj.weight))
        for writer in (o_proj, down_proj):
            row_scale = torch.ones(writer.weight.shape[0], device=writer.weight.device)
            if channel is not None:
                row_scale = row_scale * channel.to(row_scale)
            if layer_gates is not None:
                row_scale = row_scale * layer_gates[index].to(row_scale)
            writer.weight.mul_(row_scale.unsqueeze(1).to(writer.weight))
            if writer.bias is not None:
                writer.bias.mul_(row_scale.to(writer.bias))
    if channel is not None:
        _fold_channel_gates_into_embeddings(model, channel)


def _fold_channel_gates_into_embeddings(model: nn.Module, channel: torch.Tensor) -> None:
    """The masked model gates the embedding output; a tied LM head shares that matrix, so the final norm's weight
    is divided by the same gate to leave the logits unchanged (a channel gated to 0 is 0 in the residual stream,
    so what its norm weight holds never matters)."""
    decoder = decoder_of(model)
    embeddings = decoder.embed_tokens.weight
    embeddings.mul_(channel.to(embeddings).unsqueeze(0))
    if model.get_output_embeddings().weight is embeddings:
        safe = torch.where(channel > 0, channel, torch.ones_like(channel))
        decoder.norm.weight.div_(safe.to(decoder.norm.weight))
