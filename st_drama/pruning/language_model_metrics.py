"""Perplexity of a causal LM on token blocks: the quick check of what pruning cost and recovery won back."""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm

from .calibration import TokenBlocks
from .importance import autocast_context


@torch.no_grad()
def perplexity(
    model: nn.Module, blocks: TokenBlocks, batch_size: int = 4, bf16: bool = False, show_progress: bool = False
) -> float:
    """``exp`` of the mean next-token negative log-likelihood over every predicted token of ``blocks``.

    Args:
        model: A causal LM (``LlamaForCausalLM``); put in eval mode.
        blocks: Held-out text packed by :func:`st_drama.pruning.calibration.token_blocks`.
        batch_size: Blocks per forward pass.
        bf16: Run under bf16 autocast (log-probabilities are taken in fp32).
        show_progress: Show a progress bar.
    """
    model.eval()
    device = next(model.parameters()).device
    total_nll = 0.0
    total_tokens = 0
    progress = tqdm(total=blocks.num_tokens, desc="Perplexity", unit="tok", unit_scale=True, disable=not show_progress)
    with progress:
        for batch in blocks.batches(batch_size):
            batch = batch.to(device)
            with autocast_context(device, bf16):
                logits = model(input_ids=batch, use_cache=False).logits
            log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            targets = batch[:, 1:]
            total_nll -= float(log_probs.gather(-1, targets.unsqueeze(-1)).sum())
            total_tokens += targets.numel()
            progress.update(batch.numel())
    if total_tokens == 0:
        raise ValueError("Perplexity needs blocks of at least 2 tokens.")
    return math.exp(total_nll / total_tokens)
