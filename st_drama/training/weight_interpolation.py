"""WiSE-FT (Wortsman et al., 2022): interpolate the fine-tuned weights with the weights training started from.

A model trained for long on pseudo-queries drifts towards what those queries look like; moving part of the way back
to the starting weights keeps what it learned and recovers some of the starting model's generality.
"""

from __future__ import annotations

import torch

from .config import check_wise_alpha


def snapshot_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s state: the starting point :func:`interpolate_weights` moves back towards."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def interpolate_weights(
    model: torch.nn.Module, start_weights: dict[str, torch.Tensor], wise_alpha: float
) -> torch.nn.Module:
    """Set ``model``'s floating-point weights to ``(1 - wise_alpha) * start + wise_alpha * current``, in place.

    Args:
        model: The fine-tuned model (LoRA adapters merged first, so its names match the start's).
        start_weights: :func:`snapshot_weights` of the same model before training.
        wise_alpha: The fine-tuned weights' share, in (0, 1]; 1 leaves the model unchanged.

    Returns:
        ``model``.
    """
    check_wise_alpha(wise_alpha)
    current = model.state_dict()
    unmatched = sorted(set(current) ^ set(start_weights))
    if unmatched:
        raise ValueError(f"The starting weights do not match the model's: {unmatched[:5]} differ (merge LoRA first?)")
    interpolated: set[int] = set()  # tied weights share storage: move each storage once
    for name, tensor in current.items():
        start = start_weights[name]
        if start.shape != tensor.shape:
            raise ValueError(f"{name}: starting shape {tuple(start.shape)} differs from {tuple(tensor.shape)}")
        if tensor.is_floating_point() and wise_alpha < 1.0 and tensor.data_ptr() not in interpolated:
            interpolated.add(tensor.data_ptr())
            with torch.no_grad():
                tensor.lerp_(start.to(device=tensor.device, dtype=tensor.dtype), 1.0 - wise_alpha)
    return model


def interpolate_with_start(model: torch.nn.Module, start: torch.nn.Module, wise_alpha: float) -> torch.nn.Module:
    """:func:`interpolate_weights` towards ``start``, a model of the same shape: for a SentenceTransformer trained
    earlier, the LLM it was fine-tuned from, built with :func:`st_drama.build_model` in the same style."""
    return interpolate_weights(model, start.state_dict(), wise_alpha)  # read only: no copy needed
