"""DRAMA-style retrievers as sentence-transformers' own modules, so that a saved folder loads with plain
``SentenceTransformer(folder)``: no ``trust_remote_code``, no st_drama.

The modules express DRAMA's framing exactly:

- bidirectional attention: the decoder's config says ``"is_causal": false``, which transformers (>= 5.2) honours in
  its stock Llama-family models (eager and sdpa);
- ``Query: `` before queries, nothing before documents: the model's ``prompts``, so ``encode_query``,
  ``encode(..., prompt_name="query")`` and MTEB's wrapper all frame the same way;
- EOS after every text: the tokenizer's post-processor appends it (after any token it already adds), and is saved
  in ``tokenizer.json``;
- mean pooling over every token (prompt and EOS included), then normalisation: ``Pooling`` and ``Normalize``.

:class:`~st_drama.models.LlamaBackbone` gives the same embeddings (tested) and stays for what these modules cannot
express: LLaRA's suffix prompts and prompt-token pooling, several windows per long text, left padding.
"""

from __future__ import annotations

from typing import Any

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from .llama_backbone import LLAMA_FAMILY_MODEL_TYPES

# The text modality only: a tokenizer with a chat template would otherwise turn texts into chat messages.
TEXT_ONLY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}


class StandardFormUnavailableError(ValueError):
    """The model's tokenizer cannot append EOS through its post-processor (no fast tokenizer backend)."""


def standard_transformer(
    model_path: str, max_seq_length: int, model_kwargs: dict[str, Any] | None = None
) -> Transformer:
    """sentence-transformers' ``Transformer`` over a Llama-family decoder, bidirectional, appending EOS."""
    transformer = Transformer(
        model_path,
        max_seq_length=max_seq_length,
        model_kwargs={"attn_implementation": "sdpa", **(model_kwargs or {})},
        modality_config=TEXT_ONLY,
        module_output_name="token_embeddings",
    )
    model_type = transformer.auto_model.config.model_type
    if model_type not in LLAMA_FAMILY_MODEL_TYPES:
        raise ValueError(f"{model_path}: model_type {model_type!r} is not one of {LLAMA_FAMILY_MODEL_TYPES}.")
    # Saved in config.json: plain transformers then builds a bidirectional mask for this model.
    transformer.auto_model.config.is_causal = False
    append_eos(transformer.tokenizer)
    return transformer


def append_eos(tokenizer: Any) -> None:
    """Make the tokenizer end every text with EOS (after the special tokens it already adds around a text), as
    DRAMA's inputs do. Idempotent."""
    from tokenizers.processors import Sequence, TemplateProcessing

    backend = getattr(tokenizer, "_tokenizer", None)
    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if backend is None or eos is None:
        raise StandardFormUnavailableError(
            f"{type(tokenizer).__name__} has no fast tokenizer backend or no EOS token to append."
        )
    with_specials = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    start = _find(with_specials, plain)
    if start < 0:
        raise StandardFormUnavailableError("The tokenizer changes a text's own tokens when adding special tokens.")
    leading, trailing = with_specials[:start], with_specials[start + len(plain) :]
    if trailing and trailing[-1] == eos_id:
        return
    specials = [*leading, *trailing, eos_id]
    tokens = tokenizer.convert_ids_to_tokens(specials)
    template = " ".join([*tokens[: len(leading)], "$A", *tokens[len(leading) :]])
    framing = TemplateProcessing(
        single=template,
        pair=f"{template} $B:1 {eos}:1",
        special_tokens=sorted(set(zip(tokens, specials, strict=True))),
    )
    current = backend.post_processor
    # A processor that adds no token (byte-level offsets) is kept; one that adds tokens is what the template redoes.
    if current is not None and not leading and not trailing:
        framing = Sequence([current, framing])
    backend.post_processor = framing


def standard_drama_model(
    model_path: str,
    max_seq_length: int,
    query_prefix: str,
    normalize: bool = True,
    truncate_dim: int | None = None,
    device: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    model_card_data: Any = None,
) -> SentenceTransformer:
    """A DRAMA-style retriever (bidirectional, mean pooling, ``query_prefix`` before queries, EOS, normalised) made
    of sentence-transformers' own modules."""
    transformer = standard_transformer(model_path, max_seq_length, model_kwargs)
    modules: list[Any] = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")]
    if normalize:
        modules.append(Normalize())
    return SentenceTransformer(
        modules=modules,
        device=device,
        truncate_dim=truncate_dim,
        similarity_fn_name="cosine",
        prompts={"query": query_prefix, "document": ""},
        model_card_data=model_card_data,
    )


def is_standard_form(model: SentenceTransformer) -> bool:
    """Whether ``model`` is made of sentence-transformers' own modules (loads without ``trust_remote_code``)."""
    return all(type(module).__module__.startswith("sentence_transformers.") for module in model)


def _find(haystack: list[int], needle: list[int]) -> int:
    for start in range(len(haystack) - len(needle) + 1):
        if haystack[start : start + len(needle)] == needle:
            return start
    return -1
