"""``mteb.ModelMeta`` for an st-drama SentenceTransformer: what a leaderboard submission needs, filled from the
model itself (parameters, embedding size, max tokens, similarity, query/document framing) and from the caller
(name, languages, training data, license, release date)."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mteb.models import ModelMeta, SentenceTransformerEncoderWrapper
from sentence_transformers import SentenceTransformer

from .encoders import model_fingerprint, parameter_counts

ST_DRAMA_CODE_URL = "https://github.com/st-drama/st-drama"
MEGABYTE = 1024**2


def build_model_meta(
    model: SentenceTransformer,
    name: str,
    *,
    revision: str | None = None,
    languages: Sequence[str] | None = ("eng-Latn",),
    training_datasets: Iterable[str] | None = (),
    release_date: str | datetime.date | None = None,
    license: str = "apache-2.0",
    open_weights: bool = True,
    adapted_from: str | None = None,
    matryoshka_dims: Sequence[int] | None = None,
    reference: str | None = None,
    public_training_code: str | None = ST_DRAMA_CODE_URL,
    public_training_data: str | bool | None = None,
    citation: str | None = None,
) -> ModelMeta:
    """The :class:`mteb.ModelMeta` of an st-drama (or any) SentenceTransformer, validated by mteb.

    Args:
        model: The model; parameters, embedding size, max tokens, similarity and framing are read from it.
        name: ``"organization/model_name"``, ideally the Hugging Face repository it is pushed to.
        revision: The model revision (a Hugging Face commit); defaults to a fingerprint of the weights.
        languages: MTEB language codes the model is meant for (SmolLM2, the default LLM, is English).
        training_datasets: Names of the MTEB tasks whose data (any split, including augmentations of their corpus)
            the model was trained on; empty means zero-shot on all of MTEB, ``None`` means unknown.
        release_date: ``YYYY-MM-DD``; defaults to today.
        license: The weights' license (SmolLM2's is Apache-2.0; a model built from another LLM inherits its terms).
        open_weights: Whether the weights are public.
        adapted_from: The LLM the retriever was built from; read from the backbone's config when it names a hub
            repository.
        matryoshka_dims: Embedding sizes the model was trained to be truncated to (listed in ``embed_dim``).
        reference: The model's page; defaults to ``https://huggingface.co/<name>``.
        public_training_code: Where the training code is.
        public_training_data: Where the training data is, if public.
        citation: BibTeX, if any.
    """
    n_parameters, n_embedding_parameters, n_bytes = parameter_counts(model)
    embed_dim = _embedding_dimension(model)
    framing = model_framing(model)
    standard = all(type(module).__module__.startswith("sentence_transformers.") for module in model)
    return ModelMeta(
        loader=SentenceTransformerEncoderWrapper,
        # Models of sentence-transformers' own modules load without remote code; st-drama's ship theirs.
        loader_kwargs={} if standard else {"trust_remote_code": True},
        name=name,
        revision=revision or model_fingerprint(model),
        release_date=_iso_date(release_date),
        languages=list(languages) if languages is not None else None,
        n_parameters=n_parameters,
        n_embedding_parameters=n_embedding_parameters,
        memory_usage_mb=round(n_bytes / MEGABYTE),
        max_tokens=model.max_seq_length * getattr(model[0], "max_chunks", 1),
        embed_dim=_embedding_sizes(embed_dim, matryoshka_dims),
        license=license,
        open_weights=open_weights,
        public_training_code=public_training_code,
        public_training_data=public_training_data,
        framework=["Sentence Transformers", "PyTorch", "safetensors"],
        reference=reference or f"https://huggingface.co/{name}",
        similarity_fn_name=model.similarity_fn_name or "cosine",
        use_instructions=framing["query"] != framing["document"],
        training_datasets=set(training_datasets) if training_datasets is not None else None,
        adapted_from=adapted_from or _source_llm(model),
        model_type=["dense"],
        citation=citation,
    )


def model_framing(model: SentenceTransformer) -> dict[str, dict[str, Any]]:
    """How the model frames queries and documents: st-drama's task formats (``prefix``, ``suffix``,
    ``special_tokens``) for a ``LlamaBackbone``, else the SentenceTransformer's ``query``/``document`` prompts."""
    task_formats = getattr(model[0], "task_formats", None)
    if isinstance(task_formats, dict) and {"query", "document"} <= set(task_formats):
        return {task: dict(task_formats[task]) for task in ("query", "document")}
    prompts = model.prompts or {}
    return {
        task: {"prefix": prompts.get(task) or "", "suffix": "", "special_tokens": []} for task in ("query", "document")
    }


def model_meta_dict(meta: ModelMeta) -> dict[str, Any]:
    """The ModelMeta as JSON-ready data: mteb's ``to_dict`` (the loader by its name), with every Matryoshka size kept
    in ``embed_dim`` (``to_dict`` keeps only the largest)."""
    data = meta.to_dict()
    data["embed_dim"] = meta.embed_dim
    return json.loads(json.dumps(data, default=str))


def save_model_meta(meta: ModelMeta, path: str | os.PathLike) -> Path:
    """Write :func:`model_meta_dict` to ``path`` (JSON) and return the path; :func:`load_model_meta` reads it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model_meta_dict(meta), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_model_meta(path: str | os.PathLike) -> ModelMeta:
    """The ``mteb.ModelMeta`` a ``model_meta.json`` describes (its loader, written by name, resolved among mteb's
    model wrappers), validated by mteb."""
    import mteb.models

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    loader = data.get("loader")
    if isinstance(loader, str):
        resolved = getattr(mteb.models, loader.rsplit(".", 1)[-1], None)
        if resolved is None:
            raise ValueError(f"{path}: loader {loader!r} is not one of mteb's model wrappers.")
        data["loader"] = resolved
    return ModelMeta.model_validate(data)


def _iso_date(value: str | datetime.date | None) -> str:
    if value is None:
        return datetime.date.today().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return datetime.date.fromisoformat(value).isoformat()


def _embedding_sizes(embed_dim: int | None, matryoshka_dims: Sequence[int] | None) -> int | list[int] | None:
    if not matryoshka_dims:
        return embed_dim
    sizes = {int(size) for size in matryoshka_dims}
    if embed_dim is not None:
        sizes.add(int(embed_dim))
    return sorted(sizes, reverse=True)


def _source_llm(model: SentenceTransformer) -> str | None:
    """The backbone's ``name_or_path`` when it is a hub repository id (``org/name``), not a local folder."""
    inner = getattr(model[0], "auto_model", None)
    source = getattr(getattr(inner, "config", None), "name_or_path", "") or ""
    if source.count("/") == 1 and not os.path.exists(source) and not source.startswith((".", "/")):
        return source
    return None


def _embedding_dimension(model: SentenceTransformer) -> int | None:
    # sentence-transformers 6.2 renamed get_sentence_embedding_dimension (which now warns) to get_embedding_dimension.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return getter()
