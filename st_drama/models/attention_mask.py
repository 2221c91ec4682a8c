"""Attention masks for running a decoder-only LLM bidirectionally (or causally) under any padding side.

Portable: imports only torch, so it can be shipped inside a saved model folder as remote code.

We hand transformers a ready 4D mask instead of the 2D padding mask. Llama-family models in transformers 5 build
their own causal mask from a 2D mask, but return a 4D mask unchanged, so this is the one input that reliably
decides what every token can see, for both the eager and the sdpa attention implementations.
"""

from __future__ import annotations

import torch

MASKABLE_IMPLEMENTATIONS = ("eager", "sdpa")


def position_ids_from_padding(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift the first real token off 0."""
    positions = attention_mask.long().cumsum(dim=-1) - 1
    return positions.clamp(min=0)


def build_attention_mask(
    attention_mask: torch.Tensor,
    causal: bool,
    implementation: str,
    dtype: torch.dtype,
    allowed_pairs: torch.Tensor | None = None,
) -> torch.Tensor:
    """The 4D mask ``[batch, 1, query, key]`` for one forward pass.

    Args:
        attention_mask: ``[batch, seq]`` with 1 for real tokens and 0 for padding (either side).
        causal: Whether a token may only see itself and earlier tokens.
        implementation: The model's attention implementation, ``"sdpa"`` (boolean mask) or ``"eager"``
            (additive float mask).
        dtype: The float dtype of the additive mask for eager attention.
        allowed_pairs: Optional ``[batch, query, key]`` boolean structure intersected with the mask, e.g. to hide
            one appended prompt from another while both are computed in one pass.

    Returns:
        A boolean mask (``True`` = may attend) for sdpa, or an additive float mask (0 or the dtype's minimum) for
        eager attention.
    """
    if implementation not in MASKABLE_IMPLEMENTATIONS:
        raise ValueError(
            f"Attention implementation {implementation!r} is not supported; use one of {MASKABLE_IMPLEMENTATIONS}."
        )
    is_token = attention_mask.bool()
    seq_len = is_token.shape[-1]
    allowed = is_token[:, None, None, :].expand(-1, 1, seq_len, -1)
    if causal:
        lower_triangle = torch.ones(seq_len, seq_len, dtype=torch.bool, device=is_token.device).tril()
        allowed = allowed & lower_triangle
    if allowed_pairs is not None:
        allowed = allowed & allowed_pairs[:, None].bool()
    # A padding query row may have no visible key (causal + left padding), which makes softmax return NaN that
    # can leak into gradients; let padding queries see themselves. Real tokens never attend to padding keys.
    diagonal = torch.eye(seq_len, dtype=torch.bool, device=is_token.device)
    allowed = allowed | (diagonal & ~is_token[:, None, :, None])
    if implementation == "sdpa":
        return allowed
    additive = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return additive.masked_fill(~allowed, torch.finfo(dtype).min)
