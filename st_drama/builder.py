"""``build_model``: a ready DRAMA- or LLaRA-style SentenceTransformer from a Llama-family LLM."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize

from .defaults import DEFAULT_LLM_NAME, DEFAULT_STYLE, check_style
from .models import LlamaBackbone, TokenPooling

logger = logging.getLogger(__name__)

DEFAULT_MAX_SEQ_LENGTH = 512
# What each style means when the caller does not say otherwise.
STYLE_DEFAULTS = {
    "drama": {"attention": "bidirectional", "pooling": "mean"},
    "llara": {"attention": "causal", "pooling": "prompt_tokens"},
}


def build_model(
    model_name_or_path: str = DEFAULT_LLM_NAME,
    style: str = DEFAULT_STYLE,
    attention: str | None = None,
    pooling: str | None = None,
    max_seq_length: int | None = None,
    normalize: bool = True,
    truncate_dim: int | None = None,
    query_prefix: str | None = None,
    num_prompt_tokens: int = 8,
    padding_side: str = "right",
    device: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    standard: bool | None = None,
    **backbone_kwargs: Any,
) -> SentenceTransformer:
    """Build a retriever from a Llama-family LLM: backbone, pooling, normalisation and task framing.

    A DRAMA-style model is made of sentence-transformers' own modules whenever they express it exactly
    (:mod:`st_drama.models.standard`): its saved folder loads with plain ``SentenceTransformer(folder)``. Other
    framings (LLaRA's suffix prompts and prompt-token pooling, several windows per long text, left padding) use
    st-drama's :class:`~st_drama.models.LlamaBackbone` and :class:`~st_drama.models.TokenPooling`, whose folders
    ship their code (``trust_remote_code=True``).

    Args:
        model_name_or_path: A Llama-family checkpoint (folder or hub id; a causal-LM or base model, e.g. a pruned
            model from :func:`st_drama.pruning.prune`), or ``"smollm2-135m"`` for the embedded default. A saved
            SentenceTransformer folder is loaded as it is.
        style: ``"drama"`` (bidirectional attention, mean pooling, ``Query: `` before queries) or ``"llara"``
            (causal attention, EBAR prompt after queries and EBAE prompt after documents, pooled over the prompt
            tokens).
        attention: Override the style's attention, ``"bidirectional"`` or ``"causal"``.
        pooling: Override the style's pooling, ``"mean"``, ``"last_token"`` or ``"prompt_tokens"``.
        max_seq_length: Maximum tokens per text, framing included (default: 512 for an LLM, a saved folder's own).
        normalize: Append a Normalize module so embeddings have unit length.
        truncate_dim: Matryoshka truncation of the output embeddings (sentence-transformers' ``truncate_dim``).
        query_prefix: DRAMA style's query prefix (default ``"Query: "``).
        num_prompt_tokens: LLaRA style's number of special prompt tokens per prompt.
        padding_side: ``"right"`` or ``"left"`` (left needs st-drama's backbone).
        device: Device to put the model on.
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (dtype, attention implementation).
        standard: Use sentence-transformers' own modules: None (default) whenever they express the model exactly,
            False never, True always (an error when they cannot).
        **backbone_kwargs: Further :class:`~st_drama.models.LlamaBackbone` arguments (e.g. ``max_chunks``).

    Returns:
        A SentenceTransformer whose ``encode_query``/``encode_document`` (and ``prompt_name="query"`` /
        ``"document"``) apply the style's framing.
    """
    check_style(style)
    if _is_sentence_transformer_folder(model_name_or_path):
        logger.info(f"{model_name_or_path} is a saved SentenceTransformer; loading it as it is.")
        model = SentenceTransformer(str(model_name_or_path), device=device, trust_remote_code=True)
        if max_seq_length is not None:
            model.max_seq_length = max_seq_length
        return model

    from .default_llm import resolve_model_path
    from .models.task_formats import DRAMA_QUERY_PREFIX, default_task_formats, task_prompt

    defaults = STYLE_DEFAULTS[style]
    attention = attention or defaults["attention"]
    pooling = pooling or defaults["pooling"]
    query_prefix = DRAMA_QUERY_PREFIX if query_prefix is None else query_prefix
    max_seq_length = DEFAULT_MAX_SEQ_LENGTH if max_seq_length is None else max_seq_length
    exact = (
        style == "drama"
        and attention == "bidirectional"
        and pooling == "mean"
        and padding_side == "right"
        and set(backbone_kwargs) <= {"max_chunks"}
        and backbone_kwargs.get("max_chunks", 1) == 1
    )
    if standard and not exact:
        raise ValueError(
            "standard=True: sentence-transformers' own modules express only DRAMA's framing (bidirectional "
            "attention, mean pooling, right padding, one window per text); use standard=None."
        )
    if exact and standard is not False:
        from .models.standard import StandardFormUnavailableError, standard_drama_model

        try:
            return standard_drama_model(
                resolve_model_path(model_name_or_path),
                max_seq_length,
                query_prefix,
                normalize=normalize,
                truncate_dim=truncate_dim,
                device=device,
                model_kwargs=model_kwargs,
                model_card_data=card_data(model_name_or_path, style),
            )
        except StandardFormUnavailableError as error:
            if standard:
                raise
            logger.info(f"Using st-drama's backbone: {error}")

    task_formats = default_task_formats(style, query_prefix=query_prefix, num_prompt_tokens=num_prompt_tokens)
    backbone = LlamaBackbone(
        model_name_or_path,
        attention=attention,
        max_seq_length=max_seq_length,
        prompt_style=style,
        task_formats=task_formats,
        padding_side=padding_side,
        model_kwargs=model_kwargs,
        **backbone_kwargs,
    )
    modules: list[Any] = [backbone, TokenPooling(backbone.get_embedding_dimension(), mode=pooling)]
    if normalize:
        modules.append(Normalize())
    return SentenceTransformer(
        modules=modules,
        device=device,
        truncate_dim=truncate_dim,
        similarity_fn_name="cosine",
        model_card_data=card_data(model_name_or_path, style),
        # One distinct prompt per task: encode(..., prompt_name="query") then frames as encode_query does.
        prompts={task: task_prompt(task_formats[task]) for task in ("query", "document")},
    )


def card_data(model_name_or_path: str, style: str) -> Any:
    """The model card data of a new retriever: st-drama's, naming the base LLM when it is a hub id."""
    from .model_card import RetrieverCardData, hub_model_id

    base_model = hub_model_id(model_name_or_path)
    card = RetrieverCardData(
        local_files_only=True,
        model_name=f"{style.upper()}-style retriever from {base_model or Path(str(model_name_or_path)).name}",
    )
    card.base_model = base_model
    return card


def _is_sentence_transformer_folder(path: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(str(path), "modules.json"))
