"""Tiny Llama models for the pruning tests, and ways to make one of their pieces provably irrelevant."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import cranfield_texts, save_tiny_decoder
from transformers import AutoModelForCausalLM, AutoTokenizer

from st_drama.pruning import PruningPlan, pack_token_blocks

# 3 layers, hidden 64, FFN 128, 4 query heads in 2 KV groups of 2, head_dim 16.
TINY_SHAPE = dict(num_hidden_layers=3, hidden_size=64, intermediate_size=128, num_attention_heads=4)


def save_tiny_llama(folder: Path, **overrides) -> Path:
    return save_tiny_decoder(folder, **{**TINY_SHAPE, **overrides})


def load_model(folder: Path):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def load_tokenizer(folder: Path):
    return AutoTokenizer.from_pretrained(folder)


def sample_ids(vocab_size: int, batch: int = 2, length: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


def logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids, use_cache=False).logits


def calibration_blocks(tokenizer, tokens: int = 1024, sequence_length: int = 64):
    return pack_token_blocks(tokenizer, cranfield_texts(60), tokens, sequence_length)


def full_plan(config) -> PruningPlan:
    """A plan that keeps everything (the identity)."""
    layers, heads, kv_heads = config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads
    return PruningPlan(
        layers=list(range(layers)),
        hidden_channels=list(range(config.hidden_size)),
        query_heads=[list(range(heads)) for _ in range(layers)],
        kv_heads=[list(range(kv_heads)) for _ in range(layers)],
        neurons=[list(range(config.intermediate_size)) for _ in range(layers)],
    )


def head_dim_of(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


@torch.no_grad()
def silence_heads(model, heads: list[int], layers: list[int] | None = None) -> None:
    """Zero the o_proj columns of the given query heads: they no longer write anything."""
    head_dim = head_dim_of(model.config)
    for index, layer in enumerate(model.model.layers):
        if layers is None or index in layers:
            for head in heads:
                layer.self_attn.o_proj.weight[:, head * head_dim : (head + 1) * head_dim] = 0


@torch.no_grad()
def silence_neuron(model, neuron: int) -> None:
    """Zero one FFN neuron's down_proj column in every layer."""
    for layer in model.model.layers:
        layer.mlp.down_proj.weight[:, neuron] = 0


@torch.no_grad()
def silence_channel(model, channel: int) -> None:
    """Make one residual channel always zero: nothing writes to it (embedding, o_proj, down_proj)."""
    model.model.embed_tokens.weight[:, channel] = 0
    for layer in model.model.layers:
        for writer in (layer.self_attn.o_proj, layer.mlp.down_proj):
            writer.weight[channel] = 0
            if writer.bias is not None:
                writer.bias[channel] = 0


@torch.no_grad()
def make_identity_layer(model, index: int) -> None:
    """A layer that adds nothing to the residual stream: its output equals its input."""
    layer = model.model.layers[index]
    for writer in (layer.self_attn.o_proj, layer.mlp.down_proj):
        writer.weight.zero_()
        if writer.bias is not None:
            writer.bias.zero_()


def parameter_count(model) -> int:
    """Distinct parameters (tied weights once)."""
    return sum(parameter.numel() for parameter in model.parameters())
