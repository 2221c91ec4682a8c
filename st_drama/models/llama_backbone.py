"""A sentence-transformers input module around a Llama-family decoder, run with bidirectional or causal attention.

Portable: this file imports only torch, transformers, sentence-transformers and its sibling portable files, so a
saved model folder ships a copy of it and loads where st_drama is not installed (see ``portable_code.py``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from .attention_mask import MASKABLE_IMPLEMENTATIONS, build_attention_mask, position_ids_from_padding
from .portable_code import write_portable_code
from .task_formats import PROMPT_STYLES, default_task_formats, task_prompt, validate_task_formats

try:
    from sentence_transformers.sentence_transformer.modules import InputModule
except ImportError:  # an older sentence-transformers loading a shipped model folder
    from sentence_transformers.models import InputModule

logger = logging.getLogger(__name__)

LLAMA_FAMILY_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
ATTENTION_MODES = ("bidirectional", "causal")


class LlamaBackbone(InputModule):
    """Llama-family decoder (Llama, Mistral, Qwen2/3) as a sentence-transformers input module.

    Every text is framed by its task's format (DRAMA: ``Query: `` before queries, nothing around documents; LLaRA:
    the EBAR prompt and its special tokens after queries, the EBAE prompt after documents), truncated to
    ``max_seq_length`` with the framing kept, and ended with the EOS token (DRAMA) when ``append_eos``. The forward
    pass gives every token's last hidden state as ``token_embeddings``; pair it with
    :class:`~st_drama.models.TokenPooling`.

    Attention is decided by the 4D mask this module builds, not by the model's default causal mask: with
    ``attention="bidirectional"`` every token sees every real token of its text; with ``"causal"`` only itself and
    earlier tokens. Padding (either side) never changes the states of real tokens.

    Args:
        model_name_or_path: A local folder or hub id of a Llama-family checkpoint (base or causal-LM), or
            ``"smollm2-135m"`` for st-drama's embedded default when st_drama is installed.
        attention: ``"bidirectional"`` (DRAMA) or ``"causal"`` (LLaRA, plain LLM).
        max_seq_length: Maximum tokens per text, framing and EOS included.
        prompt_style: ``"drama"``, ``"llara"`` or ``"none"``; picks the default ``task_formats``.
        task_formats: Explicit ``{task: {"prefix", "suffix", "special_tokens"}}``; overrides ``prompt_style``.
        default_task: The task used when ``encode`` is called without one.
        append_eos: Append the tokenizer's EOS token to every text. Defaults to True unless the formats end in
            special prompt tokens (LLaRA), whose states are the embedding.
        padding_side: ``"right"`` or ``"left"``.
        max_chunks: Texts longer than ``max_seq_length`` are cut into up to this many windows, each framed and
            embedded on its own; :class:`~st_drama.models.TokenPooling` averages the windows' unit-length
            embeddings, weighted by their token counts, into the text's embedding. 1 (default) truncates. An
            inference setting: while the module is in training mode texts are truncated, so that batches keep
            one row per text.
        tokenize_prefix_apart: Tokenize the task prefix and the text separately (LLaRA's release does; a prompt
            before the text is otherwise tokenized with it, as sentence-transformers does).
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (e.g. ``{"dtype": torch.bfloat16,
            "attn_implementation": "eager"}``); the attention implementation defaults to sdpa.
        processor_kwargs: Passed to ``AutoTokenizer.from_pretrained``.
        config_kwargs: Passed to ``AutoConfig.from_pretrained``.
        cache_dir: Hugging Face cache folder for hub ids.
    """

    __module__ = "st_drama_modules"  # the name saved in modules.json: importable with or without st_drama

    config_file_name = "st_drama_backbone.json"
    config_keys = [
        "attention",
        "max_seq_length",
        "prompt_style",
        "task_formats",
        "default_task",
        "append_eos",
        "padding_side",
        "max_chunks",
        "tokenize_prefix_apart",
    ]
    save_in_root = True

    def __init__(
        self,
        model_name_or_path: str,
        attention: str = "bidirectional",
        max_seq_length: int = 512,
        prompt_style: str = "drama",
        task_formats: dict[str, dict] | None = None,
        default_task: str = "document",
        append_eos: bool | None = None,
        padding_side: str = "right",
        max_chunks: int = 1,
        tokenize_prefix_apart: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        **hub_kwargs: Any,
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}.")
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}, got {prompt_style!r}.")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        self.attention = attention
        self.prompt_style = prompt_style
        self.task_formats = validate_task_formats(task_formats or default_task_formats(prompt_style))
        if default_task not in self.task_formats:
            raise ValueError(f"default_task {default_task!r} is not one of the tasks {sorted(self.task_formats)}.")
        self.default_task = default_task
        self.padding_side = padding_side
        self.max_chunks = max_chunks
        self.tokenize_prefix_apart = bool(tokenize_prefix_apart)
        ends_in_prompt_tokens = any(fmt["special_tokens"] for fmt in self.task_formats.values())
        self.append_eos = (not ends_in_prompt_tokens) if append_eos is None else bool(append_eos)

        model_path = _resolve_default_name(model_name_or_path)
        load_kwargs = {"cache_dir": cache_dir, **{k: v for k, v in hub_kwargs.items() if k in _HUB_KWARGS}}
        config = AutoConfig.from_pretrained(model_path, **load_kwargs, **(config_kwargs or {}))
        _check_llama_family(config, model_path)
        model_kwargs = {"attn_implementation": "sdpa", **(model_kwargs or {})}
        self.auto_model = AutoModel.from_pretrained(model_path, config=config, **load_kwargs, **model_kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, **load_kwargs, **(processor_kwargs or {}))
        self._check_attention_implementation()
        self._set_attention_flags()
        self._add_prompt_tokens()
        self._prepare_token_framing()

        self.max_seq_length = int(max_seq_length)
        self.num_texts_seen = 0
        self.num_texts_truncated = 0
        self._warned_truncation = False

    # ---------------------------------------------------------------- set-up

    def _check_attention_implementation(self) -> None:
        implementation = self.auto_model.config._attn_implementation
        if implementation not in MASKABLE_IMPLEMENTATIONS:
            raise ValueError(
                f"LlamaBackbone needs an attention implementation that takes a 4D mask {MASKABLE_IMPLEMENTATIONS}, "
                f"but the model uses {implementation!r}. Pass model_kwargs={{'attn_implementation': 'sdpa'}}."
            )

    def _set_attention_flags(self) -> None:
        """Mark every attention layer as (non-)causal; the mask decides, but kernels that read the flag agree."""
        is_causal = self.attention == "causal"
        for module in self.auto_model.modules():
            if hasattr(module, "is_causal"):
                module.is_causal = is_causal

    def _add_prompt_tokens(self) -> None:
        """Add the formats' special prompt tokens to the tokenizer and embeddings (once: a saved model has them)."""
        wanted = [token for fmt in self.task_formats.values() for token in fmt["special_tokens"]]
        missing = [token for token in dict.fromkeys(wanted) if token not in self.tokenizer.get_vocab()]
        if not missing:
            return
        self.tokenizer.add_tokens(missing, special_tokens=True)
        new_ids = self.tokenizer.convert_tokens_to_ids(missing)
        embeddings = self.auto_model.get_input_embeddings()
        old_rows = embeddings.weight.shape[0]
        if max(new_ids) >= old_rows:
            self.auto_model.resize_token_embeddings(max(new_ids) + 1, mean_resizing=False)
            embeddings = self.auto_model.get_input_embeddings()
        with torch.no_grad():
            # New tokens start at the mean embedding: a neutral point the training moves them from.
            embeddings.weight[new_ids] = embeddings.weight[: min(old_rows, min(new_ids))].mean(dim=0)
        logger.info(f"Added {len(missing)} prompt tokens to the tokenizer and embeddings: {missing}")

    def _prepare_token_framing(self) -> None:
        """Token ids the tokenizer adds around any text (e.g. BOS), and each task's suffix ids."""
        probe = "a"
        with_specials = self.tokenizer(probe, add_special_tokens=True)["input_ids"]
        plain = self.tokenizer(probe, add_special_tokens=False)["input_ids"]
        start = _find_sublist(with_specials, plain)
        self._leading_ids = with_specials[:start] if start >= 0 else []
        trailing = with_specials[start + len(plain) :] if start >= 0 else []
        eos_id = self.tokenizer.eos_token_id
        if self.append_eos and eos_id is None:
            raise ValueError("append_eos=True but the tokenizer defines no EOS token.")
        already_ends_in_eos = bool(trailing) and trailing[-1] == eos_id
        self._trailing_ids = trailing + ([eos_id] if self.append_eos and not already_ends_in_eos else [])
        self._suffix_ids = {
            task: self.tokenizer(fmt["suffix"], add_special_tokens=False)["input_ids"]
            + self.tokenizer.convert_tokens_to_ids(fmt["special_tokens"])
            for task, fmt in self.task_formats.items()
        }
        self._prefix_lengths = {
            task: len(self.tokenizer(fmt["prefix"], add_special_tokens=False)["input_ids"])
            for task, fmt in self.task_formats.items()
        }
        special_ids = sorted({i for fmt in self.task_formats.values() for i in self._ids_of(fmt["special_tokens"])})
        self.register_buffer("prompt_token_ids", torch.tensor(special_ids, dtype=torch.long), persistent=False)
        pad_id = self.tokenizer.pad_token_id
        self._pad_id = pad_id if pad_id is not None else (eos_id if eos_id is not None else 0)

    @property
    def max_chunks(self) -> int:
        """Windows per long text at inference (1 truncates); checked whenever it is set."""
        return self._max_chunks

    @max_chunks.setter
    def max_chunks(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"max_chunks must be at least 1, got {value!r}.")
        self._max_chunks = int(value)

    def suffix_ids(self, task: str) -> list[int]:
        """Token ids placed after the text for ``task``: the suffix text and the special prompt tokens."""
        return list(self._suffix_ids[task])

    @property
    def trailing_ids(self) -> list[int]:
        """Token ids ending every sequence (the tokenizer's own trailing specials, then EOS when appended)."""
        return list(self._trailing_ids)

    def text_token_mask(self, features: dict[str, torch.Tensor], task: str | None = None) -> torch.Tensor:
        """``[batch, seq]`` mask of the positions holding the text itself (framing, prompt tokens, EOS and
        padding excluded) in features made by :meth:`preprocess` for ``task``."""
        task = task or self.default_task
        attention_mask = features["attention_mask"].bool()
        position = position_ids_from_padding(attention_mask)
        length = attention_mask.sum(dim=-1, keepdim=True)
        text_start = len(self._leading_ids) + self._prefix_lengths[task]
        text_end = length - len(self._suffix_ids[task]) - len(self._trailing_ids)
        return attention_mask & (position >= text_start) & (position < text_end)

    def _ids_of(self, tokens: list[str]) -> list[int]:
        return self.tokenizer.convert_tokens_to_ids(tokens) if tokens else []

    # ---------------------------------------------------------------- tokenization

    def preprocess(
        self,
        inputs: Sequence[str],
        prompt: str | None = None,
        task: str | None = None,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor]:
        """Frame, tokenize, truncate and pad texts for ``task`` (``"query"``/``"document"``; default
        ``default_task``). A ``prompt`` that names one task's framing (the model's ``prompts``, see
        :func:`~st_drama.models.task_formats.task_prompt`) selects that task, so ``encode(..., prompt_name="query")``
        frames as ``encode_query`` does; a prompt naming another task than ``task`` is an error. Any other prompt
        goes between the task prefix and the text. Returns ``input_ids``, ``attention_mask`` and, when the format
        has special prompt tokens, ``prompt_token_mask`` marking them."""
        texts = _check_texts(inputs)
        prompt, task = self._task_of_prompt(prompt, task)
        task = task or self.default_task
        if task not in self.task_formats:
            raise ValueError(f"Unknown task {task!r}; this model knows the tasks {sorted(self.task_formats)}.")
        task_format = self.task_formats[task]
        suffix_ids = self._suffix_ids[task]
        max_length = int(max_length or self.max_seq_length)
        budget = max_length - len(self._leading_ids) - len(suffix_ids) - len(self._trailing_ids)
        framing_length = max_length - budget + self._prefix_lengths[task]
        if budget <= self._prefix_lengths[task]:
            raise ValueError(
                f"max_seq_length={max_length} leaves no room for text after the {task!r} framing "
                f"({framing_length} tokens); raise max_seq_length."
            )
        framing_text = task_format["prefix"] + (prompt or "")
        windows = self._window_plan(framing_text, budget)
        body_ids = self._body_ids(framing_text, texts, windows.capacity)
        sequences, owners, window_lengths = [], [], []
        truncated = 0
        for index, ids in enumerate(body_ids):
            if len(ids) > windows.capacity:
                ids = ids[: windows.capacity]
                truncated += 1
            for window in windows.split(ids):
                sequence = self._leading_ids + window + suffix_ids + self._trailing_ids
                if not sequence:
                    raise ValueError(
                        f"Input {index} is empty and the {task!r} framing adds no token (append_eos=False, no "
                        "prompt); there is nothing to embed."
                    )
                sequences.append(sequence)
                owners.append(index)
                window_lengths.append(len(window))
        self._count_truncation(truncated, len(texts), max_length)
        features = self._pad(sequences)
        if windows.count > 1:
            features["chunk_owner"] = torch.tensor(owners, dtype=torch.long)
            features["chunk_length"] = torch.tensor(window_lengths, dtype=torch.long)
        return features

    def _body_ids(self, framing_text: str, texts: list[str], capacity: int) -> list[list[int]]:
        """The framing prefix and each text as token ids, one token longer than ``capacity`` when the text is cut:
        tokenized together (what sentence-transformers does with a prompt), or apart when
        ``tokenize_prefix_apart`` (what LLaRA's release does)."""
        if not self.tokenize_prefix_apart or not framing_text:
            framed = [framing_text + text for text in texts]
            return self.tokenizer(framed, add_special_tokens=False, truncation=True, max_length=capacity + 1)[
                "input_ids"
            ]
        prefix_ids = self.tokenizer(framing_text, add_special_tokens=False)["input_ids"]
        room = max(1, capacity + 1 - len(prefix_ids))
        text_ids = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=room)["input_ids"]
        return [prefix_ids + ids for ids in text_ids]

    def _task_of_prompt(self, prompt: str | None, task: str | None) -> tuple[str | None, str | None]:
        """``(prompt, task)`` with a prompt that names a task's framing turned into that task."""
        if prompt is None:
            return None, task
        named = [name for name, task_format in self.task_formats.items() if task_prompt(task_format) == prompt]
        if len(named) != 1:  # another text, or one several tasks share: a plain prefix prompt
            return prompt, task
        if task is not None and task != named[0]:
            raise ValueError(
                f"The prompt {prompt!r} is this model's {named[0]!r} framing, but the task is {task!r} (e.g. "
                f"encode_{task}(..., prompt={prompt!r})); pass one or the other."
            )
        return None, named[0]

    def _window_plan(self, framing_text: str, budget: int) -> _WindowPlan:
        """How texts are cut for this call: one window (training, ``max_chunks=1``) or up to ``max_chunks``, where
        every window after the first starts with the task prefix again."""
        if self.training or self.max_chunks == 1:
            return _WindowPlan(budget, [], 1)
        repeated_ids = self.tokenizer(framing_text, add_special_tokens=False)["input_ids"] if framing_text else []
        if budget - len(repeated_ids) < 1:  # no room for text after a repeated prefix
            return _WindowPlan(budget, [], 1)
        return _WindowPlan(budget, repeated_ids, self.max_chunks)

    def tokenize(self, texts: Sequence[str], **kwargs: Any) -> dict[str, torch.Tensor]:
        """sentence-transformers 5.x entry point; same as :meth:`preprocess`."""
        return self.preprocess(texts, **kwargs)

    def _pad(self, sequences: list[list[int]]) -> dict[str, torch.Tensor]:
        longest = max(len(ids) for ids in sequences)
        input_ids = torch.full((len(sequences), longest), self._pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, ids in enumerate(sequences):
            span = slice(0, len(ids)) if self.padding_side == "right" else slice(longest - len(ids), longest)
            input_ids[row, span] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, span] = 1
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if len(self.prompt_token_ids):
            features["prompt_token_mask"] = torch.isin(input_ids, self.prompt_token_ids.cpu()) & attention_mask.bool()
        return features

    def _count_truncation(self, truncated: int, total: int, max_length: int) -> None:
        self.num_texts_seen += total
        self.num_texts_truncated += truncated
        if truncated and not self._warned_truncation:
            self._warned_truncation = True
            logger.warning(
                f"{truncated} of {total} texts were longer than max_seq_length={max_length} tokens and were "
                "truncated (their end dropped). The running count is in num_texts_truncated."
            )

    # ---------------------------------------------------------------- forward

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        """Run the decoder. Optional ``features``: ``position_ids`` and ``allowed_pairs`` (``[batch, query, key]``
        boolean structure intersected with the attention mask), used to compute several framings in one pass."""
        attention_mask = features["attention_mask"]
        position_ids = features.get("position_ids")
        if position_ids is None:
            position_ids = position_ids_from_padding(attention_mask)
        mask = build_attention_mask(
            attention_mask,
            causal=self.attention == "causal",
            implementation=self.auto_model.config._attn_implementation,
            dtype=self.auto_model.dtype,
            allowed_pairs=features.get("allowed_pairs"),
        )
        outputs = self.auto_model(
            input_ids=features["input_ids"],
            attention_mask=mask,
            position_ids=position_ids,
            use_cache=False,
        )
        features["token_embeddings"] = outputs.last_hidden_state
        return features

    # ---------------------------------------------------------------- sentence-transformers API

    def get_embedding_dimension(self) -> int:
        return self.auto_model.config.hidden_size

    get_word_embedding_dimension = get_embedding_dimension  # sentence-transformers 5.x name

    def get_config_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.config_keys}

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Save the decoder (or, while LoRA adapters are attached, only the adapters: call
        :meth:`merge_adapters` first for a self-contained folder), tokenizer, config and the portable code."""
        self.auto_model.save_pretrained(output_path)
        self.tokenizer.save_pretrained(output_path)
        self.save_config(output_path)
        write_portable_code(output_path)

    # ---------------------------------------------------------------- LoRA adapters

    @property
    def has_adapters(self) -> bool:
        return bool(getattr(self.auto_model, "_hf_peft_config_loaded", False))

    def merge_adapters(self) -> None:
        """Fold attached LoRA adapters (and trainable token embeddings) into the decoder's own weights and drop
        them, so the model saves as a plain, self-contained checkpoint."""
        merge_peft_adapters(self.auto_model)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> LlamaBackbone:
        local_dir = cls.load_dir_path(
            model_name_or_path,
            subfolder=subfolder,
            token=token,
            cache_folder=cache_folder,
            revision=revision,
            local_files_only=local_files_only,
        )
        with open(os.path.join(local_dir, cls.config_file_name), encoding="utf-8") as handle:
            config = json.load(handle)
        adapter_config_path = os.path.join(local_dir, ADAPTER_CONFIG_FILE)
        if not os.path.isfile(adapter_config_path):
            return cls(
                local_dir,
                **config,
                model_kwargs=model_kwargs,
                processor_kwargs=processor_kwargs,
                config_kwargs=config_kwargs,
            )
        # An adapter-only folder (a LoRA checkpoint): rebuild the base decoder, then attach the saved adapters.
        with open(adapter_config_path, encoding="utf-8") as handle:
            base_path = json.load(handle)["base_model_name_or_path"]
        backbone = cls(
            base_path,
            **config,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
            config_kwargs=config_kwargs,
        )
        backbone.auto_model.load_adapter(local_dir, is_trainable=True)
        return backbone

    def __repr__(self) -> str:
        architecture = type(self.auto_model).__name__
        return f"LlamaBackbone({{'architecture': '{architecture}', **{self.get_config_dict()}}})"


class _WindowPlan:
    """Cuts a framed text's token ids into windows of at most ``budget`` tokens: the first as it is, each later
    one ``repeated_ids`` (the task prefix) followed by the next stretch of text."""

    def __init__(self, budget: int, repeated_ids: list[int], count: int) -> None:
        self.budget = budget
        self.repeated_ids = repeated_ids
        self.count = count
        self.stride = budget - len(repeated_ids)
        self.capacity = budget + (count - 1) * self.stride

    def split(self, ids: list[int]) -> list[list[int]]:
        windows = [ids[: self.budget]]
        for start in range(self.budget, len(ids), self.stride):
            windows.append(self.repeated_ids + ids[start : start + self.stride])
        return windows


_HUB_KWARGS = ("revision", "token", "local_files_only", "trust_remote_code")
ADAPTER_CONFIG_FILE = "adapter_config.json"


def merge_peft_adapters(model: torch.nn.Module) -> None:
    """Fold the LoRA adapters (and trainable token embeddings) attached to a transformers model through its peft
    integration into the model's own weights, and drop them. No-op without adapters."""
    if not getattr(model, "_hf_peft_config_loaded", False):
        return
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
        from peft.utils.other import TrainableTokensWrapper
    except ImportError as error:
        raise ImportError("Merging LoRA adapters needs peft: pip install peft") from error
    for wrapper_type in (TrainableTokensWrapper, BaseTunerLayer):
        for name, module in list(model.named_modules()):
            if isinstance(module, wrapper_type):
                parent_name, _, child_name = name.rpartition(".")
                parent = model.get_submodule(parent_name) if parent_name else model
                setattr(parent, child_name, _merged_base_layer(module))
    model._hf_peft_config_loaded = False
    model.peft_config = {}


def _merged_base_layer(wrapper: torch.nn.Module) -> torch.nn.Module:
    """Merge a peft wrapper's adapter into its base layer and return that layer."""
    adapter_layer = getattr(wrapper, "token_adapter", wrapper)  # trainable-token wrappers hold their layer inside
    adapter_layer.merge()
    return adapter_layer.get_base_layer()


def _resolve_default_name(model_name_or_path: str) -> str:
    """Accept st-drama's default model name when st_drama is installed; a shipped copy passes paths through."""
    try:
        from st_drama.default_llm import resolve_model_path
    except ImportError:
        return str(model_name_or_path)
    return resolve_model_path(model_name_or_path)


def _check_llama_family(config: Any, model_path: str) -> None:
    model_type = getattr(config, "model_type", None)
    if model_type not in LLAMA_FAMILY_MODEL_TYPES:
        architectures = ", ".join(getattr(config, "architectures", None) or []) or "unknown"
        raise ValueError(
            f"{model_path} holds a {architectures} model (model_type {model_type!r}), which is not a Llama-family "
            f"decoder. LlamaBackbone supports model types {LLAMA_FAMILY_MODEL_TYPES}."
        )


def _check_texts(inputs: Sequence[Any]) -> list[str]:
    """Texts as strings that the tokenizer can encode; a non-string names its position."""
    if isinstance(inputs, str):
        inputs = [inputs]
    texts = []
    for index, text in enumerate(inputs):
        if not isinstance(text, str):
            raise TypeError(
                f"LlamaBackbone embeds texts only; input {index} is a {type(text).__name__}: {str(text)[:80]!r}"
            )
        texts.append(_utf8_safe(text))
    return texts


def _utf8_safe(text: str) -> str:
    """Replace what UTF-8 cannot encode (lone surrogates from broken decoding) with U+FFFD, as tokenizers need."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        repaired = text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
        logger.warning(f"Replaced characters UTF-8 cannot encode with U+FFFD in the text starting {repaired[:40]!r}")
        return repaired
    return text


def _find_sublist(haystack: list[int], needle: list[int]) -> int:
    for start in range(len(haystack) - len(needle) + 1):
        if haystack[start : start + len(needle)] == needle:
            return start
    return -1
