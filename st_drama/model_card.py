"""Model cards for st-drama retrievers, made through sentence-transformers' own model-card data: a subclass of
``SentenceTransformerModelCardData`` with st-drama's facts (form, framing, attention, pooling, Matryoshka sizes, the
recipe and its data, the evaluation) and a usage snippet that runs on the saved folder as written. Saving the model
(``model.save``, ``model.push_to_hub``) renders it into ``README.md``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.model_card import SentenceTransformerModelCardData

from .defaults import DEFAULT_LLM_HUB_ID, DEFAULT_LLM_NAME

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
# What a training run saves next to its model (st_drama.training.runtime.save_final_model).
RUN_RECORD = "st_drama_run.json"
ST_DRAMA_URL = "https://github.com/st-drama/st-drama"
USAGE_QUERY = "what is the lift of a wing in a propeller slipstream"
USAGE_DOCUMENTS = [
    "An experimental study of a wing in a propeller slipstream was made to determine the lift increase.",
    "The boundary layer on a flat plate at supersonic speeds was measured with a pitot tube.",
]


@dataclass
class RetrieverCardData(SentenceTransformerModelCardData):
    """sentence-transformers' model-card data plus what an st-drama retriever's card says.

    Args:
        matryoshka_dims: Truncations the model was trained to support (largest first, the full size excluded).
        recipe: The settings the model was made with (shown as JSON).
        data_source: One paragraph on the training data (e.g. "pseudo-queries derived from the corpus of X").
        evaluation: A markdown table of evaluation results.
        notes: Further lines (a conversion's source and how to check it, ...).
    """

    matryoshka_dims: list[int] = field(default_factory=list)
    recipe: dict[str, Any] = field(default_factory=dict)
    data_source: str | None = None
    evaluation: str | None = None
    notes: list[str] = field(default_factory=list)
    template_path: Path = field(default=TEMPLATE, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if "st-drama" not in self.tags:
            self.tags = [*self.tags, "st-drama"]
        self.generate_widget_examples = False  # the usage snippet states its output instead of computing it
        self.usage_examples = [USAGE_QUERY, *USAGE_DOCUMENTS]

    def generate_usage_snippet(self) -> str:
        """Loading the model as its folder (or hub id) needs: ``trust_remote_code=True`` only for st-drama's own
        modules; queries through ``encode_query``, documents through ``encode_document``."""
        location = self.model_id or (str(self.save_dir) if self.save_dir else "path/to/model")
        remote = ", trust_remote_code=True" if self.model is not None and not _standard(self.model) else ""
        lines = [
            "from sentence_transformers import SentenceTransformer",
            "",
            f"model = SentenceTransformer({location!r}{remote})",
            f"queries = model.encode_query([{USAGE_QUERY!r}])",
            "documents = model.encode_document([",
            *(f"    {document!r}," for document in USAGE_DOCUMENTS),
            "])",
            "print(model.similarity(queries, documents))",
        ]
        if self.matryoshka_dims:
            size = self.matryoshka_dims[-1]
            lines += [
                "",
                f"# Matryoshka: smaller vectors from the same model, e.g. {size} dimensions",
                f"small = SentenceTransformer({location!r}{remote}, truncate_dim={size})",
            ]
        return "```python\n" + "\n".join(lines) + "\n```"

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(_description(self.model) if self.model is not None else {})
        data["recipe"] = json.dumps(self.recipe, indent=2, default=str) if self.recipe else ""
        return data


def retriever_card_data(model: SentenceTransformer, **facts: Any) -> RetrieverCardData:
    """The model's card data as :class:`RetrieverCardData` (upgraded in place from sentence-transformers' own, keeping
    what a trainer recorded), with ``facts`` (its fields: ``recipe``, ``evaluation``, ``language``, ...) set."""
    card = model.model_card_data
    if not isinstance(card, RetrieverCardData):
        values = {item.name: getattr(card, item.name) for item in fields(card) if item.init}
        upgraded = RetrieverCardData(**{key: value for key, value in values.items() if key in _init_fields()})
        for item in fields(card):
            if not item.init and item.name != "template_path":
                setattr(upgraded, item.name, getattr(card, item.name))
        model.model_card_data = upgraded
        upgraded.register_model(model)
        card = upgraded
    for name, value in facts.items():
        setattr(card, name, value)
    return card


def write_model_card(model: SentenceTransformer, folder: str | os.PathLike, **facts: Any) -> Path:
    """Render the model's card (with ``facts``) into ``folder/README.md`` without re-saving the weights."""
    from sentence_transformers.base.model_card import generate_model_card

    # A model loaded from its folder has lost the facts its training run knew (sentence-transformers does not reload
    # a card's data); the run record keeps them.
    card = retriever_card_data(model, **{**recorded_facts(folder), **facts})
    card.save_dir = str(folder)
    path = Path(folder) / "README.md"
    path.write_text(generate_model_card(model), encoding="utf-8")
    return path


def hub_model_id(source: str | os.PathLike) -> str | None:
    """The hub id a source model has: the embedded default LLM's, or an ``org/name`` that is not a local path; None
    for a local folder (a card's ``base_model`` must be a hub id)."""
    source = str(source)
    if source.lower() == DEFAULT_LLM_NAME:
        return DEFAULT_LLM_HUB_ID
    if source.count("/") == 1 and not os.path.exists(source):
        return source
    return None


def recorded_facts(folder: str | os.PathLike) -> dict[str, Any]:
    """Card facts recorded by the training run that saved ``folder`` (its Matryoshka sizes and, where it has a hub
    id, its base model); empty for a folder without a run record."""
    record_path = Path(folder) / RUN_RECORD
    if not record_path.is_file():
        return {}
    record = json.loads(record_path.read_text(encoding="utf-8"))
    facts: dict[str, Any] = {}
    if record.get("matryoshka_dims"):
        facts["matryoshka_dims"] = list(record["matryoshka_dims"][1:])
    if record.get("source_model") and (base_model := hub_model_id(record["source_model"])):
        facts["base_model"] = base_model
    return facts


def _init_fields() -> set[str]:
    return {item.name for item in fields(RetrieverCardData) if item.init}


def _standard(model: SentenceTransformer) -> bool:
    return all(type(module).__module__.startswith("sentence_transformers.") for module in model)


def _description(model: SentenceTransformer) -> dict[str, str]:
    """Form, framing, attention and pooling, read from the model itself."""
    first, pooling = model[0], model[1] if len(model) > 1 else None
    if _standard(model):
        causal = getattr(getattr(first, "auto_model", None), "config", None)
        bidirectional = causal is not None and getattr(causal, "is_causal", True) is False
        prompts = model.prompts or {}
        framing = "; ".join(f"{task}: {prompt!r} + text" for task, prompt in prompts.items()) or "text as it is"
        return {
            "form": "sentence-transformers' own modules (loads without trust_remote_code)",
            "framing": f"{framing}; the tokenizer ends every text with EOS",
            "attention": "bidirectional (`is_causal: false` in config.json)" if bidirectional else "causal",
            "pooling": f"{getattr(pooling, 'pooling_mode', 'mean')} over every token, then normalised",
        }
    formats = getattr(first, "task_formats", {})
    framing = "; ".join(
        f"{task}: {fmt['prefix']!r} + text + {fmt['suffix']!r}" + (f" + {len(fmt['special_tokens'])} prompt tokens"
                                                                  if fmt["special_tokens"] else "")
        for task, fmt in formats.items()
    )  # fmt: skip
    return {
        "form": "st-drama's modules, shipped in the folder (load with trust_remote_code=True)",
        "framing": f"{framing} ({getattr(first, 'prompt_style', 'custom')} style)",
        "attention": getattr(first, "attention", "causal"),
        "pooling": f"{getattr(pooling, 'mode', 'mean')}, then normalised",
    }
