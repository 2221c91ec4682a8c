"""Running a SentenceTransformer under MTEB: queries through ``encode_query``, documents through ``encode_document``
(mteb's own SentenceTransformer wrapper picks them by prompt type), optionally under bf16 autocast, with a
ModelMeta whose revision fingerprints the weights so MTEB's result cache never mixes two models."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import torch
from mteb.models import ModelMeta, SentenceTransformerEncoderWrapper
from sentence_transformers import SentenceTransformer

from st_drama.precision import bf16_is_fast

logger = logging.getLogger(__name__)

FINGERPRINT_LENGTH = 12


class STDramaEncoder(SentenceTransformerEncoderWrapper):
    """mteb's SentenceTransformer wrapper with a chosen :class:`~mteb.ModelMeta` and optional bf16 autocast.

    Encoding alone runs under autocast; similarities are computed on the float32 embeddings, so the ranking of
    near-ties is not decided in bf16.
    """

    def __init__(self, model: SentenceTransformer, meta: ModelMeta, bf16: bool = False) -> None:
        super().__init__(model)
        self.mteb_model_meta = meta
        self.bf16 = bf16

    def encode(self, inputs: Any, **kwargs: Any) -> Any:
        with autocast_bf16(self.model.device, enabled=self.bf16):
            return super().encode(inputs, **kwargs)


@contextlib.contextmanager
def autocast_bf16(device: torch.device | str, enabled: bool = True) -> Iterator[None]:
    """bf16 autocast on ``device`` (CPU or CUDA) when enabled; a no-op otherwise."""
    device_type = torch.device(device).type
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=enabled):
        yield


def default_bf16(model: SentenceTransformer) -> bool:
    """Whether to encode under bf16 autocast by default: for Llama-family LLM backbones (st-drama's or
    sentence-transformers' own ``Transformer`` around one) on a CUDA device with bf16, or on a CPU with native bf16
    instructions. Small encoders (MiniLM) stay in float32."""
    from st_drama.models.llama_backbone import LLAMA_FAMILY_MODEL_TYPES

    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    if getattr(config, "model_type", None) not in LLAMA_FAMILY_MODEL_TYPES:
        return False
    return bf16_is_fast(model.device)


def model_fingerprint(model: SentenceTransformer, encoding: dict[str, Any] | None = None) -> str:
    """A short hash of a model's modules, configuration and weights (sums per tensor, not every byte: fast, and
    distinct for any two differently trained models), and of ``encoding`` settings that change its embeddings."""
    digest = hashlib.sha256()
    digest.update(json.dumps(_model_settings(model), sort_keys=True, default=str).encode())
    if encoding:
        digest.update(json.dumps(encoding, sort_keys=True).encode())
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            values = tensor.detach().double()
            summary = (name, tuple(tensor.shape), str(tensor.dtype), values.sum().item(), values.abs().sum().item())
            digest.update(repr(summary).encode())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def _model_settings(model: SentenceTransformer) -> dict[str, Any]:
    modules = []
    for module in model:
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        modules.append({"type": type(module).__name__, "config": config})
    return {
        "modules": modules,
        "max_seq_length": model.max_seq_length,
        "truncate_dim": model.truncate_dim,
        "prompts": model.prompts,
        "similarity": model.similarity_fn_name,
    }


def parameter_counts(model: SentenceTransformer) -> tuple[int, int | None, int]:
    """``(parameters, embedding parameters, bytes)`` of a SentenceTransformer (embedding parameters: the input token
    embedding matrix, when the first module exposes one)."""
    n_parameters = sum(parameter.numel() for parameter in model.parameters())
    n_bytes = sum(parameter.numel() * parameter.element_size() for parameter in model.parameters())
    return n_parameters, _embedding_parameters(model), n_bytes


def _embedding_parameters(model: SentenceTransformer) -> int | None:
    first = model[0]
    inner = getattr(first, "auto_model", None) or getattr(first, "model", None)
    get_embeddings = getattr(inner, "get_input_embeddings", None)
    if get_embeddings is None:
        return None
    embeddings = get_embeddings()
    weight = getattr(embeddings, "weight", None)
    return int(weight.numel()) if weight is not None else None
