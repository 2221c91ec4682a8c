"""Which pieces to keep (:class:`PruningPlan`) and cutting a Llama model down to them.

A plan keeps whole layers, hidden channels, KV groups with the same number of query heads from each, and FFN
neurons; every weight that reads or writes a removed piece is sliced consistently (q/k/v/o, gate/up/down,
embeddings, every RMSNorm, the LM head whether tied or not). The result is a fresh standard ``LlamaForCausalLM``
whose layers are renumbered ``0..n-1`` (transformers' KV caches index by ``layer_idx``) and whose config states
``head_dim`` explicitly.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .importance import ImportanceScores
from .target import ModelShape

logger = logging.getLogger(__name__)


@dataclass
class PruningPlan:
    """Source indices of everything kept. Per-layer lists follow ``layers`` (kept layers, ascending).

    ``query_heads[i]`` lists the kept query heads of kept layer ``i`` grouped by kept KV head (``kv_heads[i]``, in
    order), the same number from each, so that new head ``n`` belongs to new KV head ``n // heads_per_group``.
    ``norm_scales`` multiplies the weight of every kept RMSNorm (input and post-attention norm of each kept layer,
    then the final norm) to make up for the removed channels' share of the RMS; None means 1.
    """

    layers: list[int]
    hidden_channels: list[int]
    query_heads: list[list[int]]
    kv_heads: list[list[int]]
    neurons: list[list[int]]
    norm_scales: list[float] | None = None

    def shape(self, source: ModelShape) -> ModelShape:
        """The shape of the model this plan produces."""
        return ModelShape(
            num_layers=len(self.layers),
            hidden_size=len(self.hidden_channels),
            intermediate_size=len(self.neurons[0]) if self.neurons else source.intermediate_size,
            num_heads=len(self.query_heads[0]) if self.query_heads else source.num_heads,
            num_kv_heads=len(self.kv_heads[0]) if self.kv_heads else source.num_kv_heads,
            head_dim=source.head_dim,
            vocab_size=source.vocab_size,
            tie_word_embeddings=source.tie_word_embeddings,
            attention_bias=source.attention_bias,
            mlp_bias=source.mlp_bias,
        )

    def summary(self, source: ModelShape) -> dict[str, Any]:
        """What was removed, for provenance."""
        dropped_layers = [index for index in range(source.num_layers) if index not in set(self.layers)]
        return {"kept_layers": list(self.layers), "dropped_layers": dropped_layers}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _top_sorted(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` highest scores, ascending (ties go to the lower index)."""
    if count >= scores.numel():
        return list(range(scores.numel()))
    # A stable sort keeps ties in index order, so equal scores prune deterministically.
    order = torch.sort(scores.float(), descending=True, stable=True).indices[:count]
    return sorted(order.tolist())


def _select_heads(
    head_scores: torch.Tensor,
    group_scores: torch.Tensor | None,
    source: ModelShape,
    target: ModelShape,
) -> tuple[list[int], list[int]]:
    """The kept KV heads and, grouped under them, the kept query heads of one layer."""
    per_group = target.num_heads // target.num_kv_heads
    grouped = head_scores.reshape(source.num_kv_heads, source.group_size)
    kept_within = [_top_sorted(grouped[group], per_group) for group in range(source.num_kv_heads)]
    if group_scores is None:
        group_scores = torch.stack([grouped[group, kept].sum() for group, kept in enumerate(kept_within)])
    kv_heads = _top_sorted(group_scores, target.num_kv_heads)
    query_heads = [group * source.group_size + head for group in kv_heads for head in kept_within[group]]
    return kv_heads, query_heads


def plan_from_scores(
    scores: ImportanceScores, source: ModelShape, target: ModelShape, rescale_norms: bool = True
) -> PruningPlan:
    """Keep the highest-scoring pieces: layers by block influence, then per kept layer the best KV groups (each
    with its best query heads) and FFN neurons, and the best hidden channels overall.

    Args:
        scores: From :func:`st_drama.pruning.importance.collect_importance` (or random / learned scores).
        source: The source model's shape.
        target: The resolved target shape.
        rescale_norms: Scale every RMSNorm so that, on the calibration statistics, its output keeps its size
            after the removed channels leave the RMS (needs ``scores.norm_input_power``).
    """
    layers = _top_sorted(scores.layer, target.num_layers)
    channels = _top_sorted(scores.channel, target.hidden_size)
    query_heads, kv_heads, neurons = [], [], []
    for layer in layers:
        group_scores = scores.kv_group[layer] if scores.kv_group is not None else None
        kept_kv, kept_query = _select_heads(scores.head[layer], group_scores, source, target)
        kv_heads.append(kept_kv)
        query_heads.append(kept_query)
        neurons.append(_top_sorted(scores.neuron[layer], target.intermediate_size))
    norm_scales = None
    if rescale_norms and scores.norm_input_power is not None:
        norm_scales = norm_rescale_factors(scores.norm_input_power, layers, channels)
    return PruningPlan(
        layers=layers,
        hidden_channels=channels,
        query_heads=query_heads,
        kv_heads=kv_heads,
        neurons=neurons,
        norm_scales=norm_scales,
    )


def norm_rescale_factors(norm_input_power: torch.Tensor, layers: list[int], channels: list[int]) -> list[float]:
    """For each kept RMSNorm, ``rms(kept channels) / rms(all channels)`` of its calibration inputs.

    An RMSNorm divides by the RMS over the channels it sees; once channels are removed the RMS is taken over fewer
    (and, being the less important ones, usually smaller) values, so the normalized output grows. Multiplying the
    norm's weight by this factor restores its average scale; it is exactly 1 when nothing is removed, and exact
    when the removed channels are always zero.
    """
    total_norms = norm_input_power.shape[0]
    norm_indices = [index for layer in layers for index in (2 * layer, 2 * layer + 1)] + [total_norms - 1]
    kept = torch.tensor(channels, dtype=torch.long)
    factors = []
    for index in norm_indices:
        power = norm_input_power[index].double()
        all_mean = power.mean()
        kept_mean = power[kept].mean()
        factors.append(float(torch.sqrt(kept_mean / all_mean)) if all_mean > 0 else 1.0)
    return factors


def pruned_config(source_config: Any, shape: ModelShape) -> Any:
    """A standard ``LlamaConfig`` of the pruned shape; everything else (rope, vocab, tokens ids, dtype) is the
    source's. ``head_dim`` is written explicitly because ``hidden_size / num_heads`` no longer gives it.

    ``rms_norm_eps`` grows by ``source hidden / pruned hidden``: an RMSNorm adds eps to the *mean* square, so this
    keeps eps the same share of the *sum* of squares it is added to; with the norm weights rescaled by
    :func:`norm_rescale_factors`, removing channels that are always zero then changes nothing at all."""
    from transformers import LlamaConfig

    settings = source_config.to_dict()
    settings["rms_norm_eps"] = source_config.rms_norm_eps * source_config.hidden_size / shape.hidden_size
    for key in ("_name_or_path", "architectures", "transformers_version", "_attn_implementation_autoset"):
        settings.pop(key, None)
    settings.update(
        num_hidden_layers=shape.num_layers,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.head_dim,
        architectures=["LlamaForCausalLM"],
    )
    return LlamaConfig(**settings)


def _rows(head_indices: list[int], head_dim: int) -> torch.Tensor:
    """Row indices of q/k/v (or column indices of o_proj) belonging to the given heads."""
    return torch.tensor([head * head_dim + offset for head in head_indices for offset in range(head_dim)])


def _sliced_layer(layer: nn.Module, prefix: str, plan: PruningPlan, position: int, head_dim: int) -> dict:
    channels = torch.tensor(plan.hidden_channels)
    q_rows = _rows(plan.query_heads[position], head_dim)
    kv_rows = _rows(plan.kv_heads[position], head_dim)
    neurons = torch.tensor(plan.neurons[position])
    attention, mlp = layer.self_attn, layer.mlp
    # (module, rows kept, columns kept) for each linear: output features first, input features second.
    linears = {
        "self_attn.q_proj": (attention.q_proj, q_rows, channels),
        "self_attn.k_proj": (attention.k_proj, kv_rows, channels),
        "self_attn.v_proj": (attention.v_proj, kv_rows, channels),
        "self_attn.o_proj": (attention.o_proj, channels, q_rows),
        "mlp.gate_proj": (mlp.gate_proj, neurons, channels),
        "mlp.up_proj": (mlp.up_proj, neurons, channels),
        "mlp.down_proj": (mlp.down_proj, channels, neurons),
    }
    state = {}
    for name, (linear, rows, columns) in linears.items():
        weight = linear.weight.detach()
        state[f"{prefix}.{name}.weight"] = weight.index_select(0, rows).index_select(1, columns).clone()
        if linear.bias is not None:
            state[f"{prefix}.{name}.bias"] = linear.bias.detach().index_select(0, rows).clone()
    scales = plan.norm_scales or [1.0] * (2 * len(plan.layers) + 1)
    for offset, name in enumerate(("input_layernorm", "post_attention_layernorm")):
        weight = getattr(layer, name).weight.detach().index_select(0, channels)
        state[f"{prefix}.{name}.weight"] = weight * scales[2 * position + offset]
    return state


def sliced_state_dict(model: nn.Module, plan: PruningPlan) -> dict[str, torch.Tensor]:
    """The pruned model's weights, named as in a ``LlamaForCausalLM``."""
    decoder = model.model
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    channels = torch.tensor(plan.hidden_channels)
    state = {"model.embed_tokens.weight": decoder.embed_tokens.weight.detach().index_select(1, channels).clone()}
    for position, source_index in enumerate(plan.layers):
        layer = decoder.layers[source_index]
        state.update(_sliced_layer(layer, f"model.layers.{position}", plan, position, head_dim))
    final_scale = plan.norm_scales[-1] if plan.norm_scales else 1.0
    state["model.norm.weight"] = decoder.norm.weight.detach().index_select(0, channels) * final_scale
    lm_head = model.get_output_embeddings()
    state["lm_head.weight"] = lm_head.weight.detach().index_select(1, channels).clone()
    return state


def apply_plan(model: nn.Module, plan: PruningPlan) -> nn.Module:
    """A new ``LlamaForCausalLM`` holding only what ``plan`` keeps; ``model`` is not changed."""
    from transformers import LlamaForCausalLM
    from transformers.initialization import no_init_weights

    _check_plan(model, plan)
    source_shape = ModelShape.from_config(model.config)
    config = pruned_config(model.config, plan.shape(source_shape))
    config._attn_implementation = model.config._attn_implementation
    dtype = next(model.parameters()).dtype
    with no_init_weights():
        pruned = LlamaForCausalLM(config)
    # Skipping the (wasted) random init also skips tying; tie before loading so tied weights stay one tensor.
    pruned.tie_weights()
    pruned.to(dtype=dtype, device=next(model.parameters()).device)
    pruned.load_state_dict(sliced_state_dict(model, plan), strict=True)
    if getattr(model, "generation_config", None) is not None:
        pruned.generation_config = copy.deepcopy(model.generation_config)
    pruned.eval()
    return pruned


def _check_plan(model: nn.Module, plan: PruningPlan) -> None:
    """Reject a plan that would not give a valid standard model (uneven layers, broken GQA groups)."""
    config = model.config
    source = ModelShape.from_config(config)
    count = len(plan.layers)
    if not count or not plan.hidden_channels:
        raise ValueError("A pruning plan must keep at least one layer and one hidden channel.")
    if plan.layers != sorted(set(plan.layers)) or plan.hidden_channels != sorted(set(plan.hidden_channels)):
        raise ValueError("A pruning plan lists kept layers and hidden channels once each, in ascending order.")
    if plan.layers[-1] >= source.num_layers or plan.hidden_channels[-1] >= source.hidden_size:
        raise ValueError("A pruning plan names a layer or hidden channel the source model does not have.")
    if not (len(plan.query_heads) == len(plan.kv_heads) == len(plan.neurons) == count):
        raise ValueError("A pruning plan needs query heads, KV heads and neurons for each kept layer.")
    if len({len(heads) for heads in plan.query_heads}) != 1 or len({len(kv) for kv in plan.kv_heads}) != 1:
        raise ValueError("Every kept layer must keep the same number of heads (a standard LlamaConfig).")
    if len({len(neurons) for neurons in plan.neurons}) != 1:
        raise ValueError("Every kept layer must keep the same number of FFN neurons (a standard LlamaConfig).")
    heads = len(plan.query_heads[0])
    if len(plan.hidden_channels) % heads:
        raise ValueError(
            f"{len(plan.hidden_channels)} hidden channels are not a multiple of the {heads} heads kept per layer "
            "(transformers' LlamaConfig requires it)."
        )
    per_group = heads // len(plan.kv_heads[0])
    for position, (heads, kv_heads) in enumerate(zip(plan.query_heads, plan.kv_heads, strict=True)):
        expected_groups = [kv for kv in kv_heads for _ in range(per_group)]
        if [head // source.group_size for head in heads] != expected_groups:
            raise ValueError(
                f"Layer {plan.layers[position]}: query heads {heads} are not {per_group} per kept KV head "
                f"{kv_heads} in KV-group order; the GQA grouping would break."
            )
    expected_norms = 2 * count + 1
    if plan.norm_scales is not None and len(plan.norm_scales) != expected_norms:
        raise ValueError(f"norm_scales needs {expected_norms} values, got {len(plan.norm_scales)}.")
    if plan.norm_scales is not None and not all(math.isfinite(scale) for scale in plan.norm_scales):
        raise ValueError("norm_scales must be finite.")
    logger.debug(f"Plan keeps {count} of {source.num_layers} layers.")
