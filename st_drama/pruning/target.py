"""Target shapes for structured pruning: what the user asks for (:class:`PruningTarget`), what it resolves to
against a source model (:class:`ModelShape`), and the parameter counts a shape implies.

Pruning keeps ``head_dim`` and removes whole attention heads, so the shape has to stay a valid grouped-query
attention (GQA) layout: the kept query heads are taken in equal numbers from each kept KV group. transformers'
``LlamaConfig`` also requires ``hidden_size`` to be a multiple of ``num_attention_heads`` even when ``head_dim`` is
explicit. Every rule is checked before any model is loaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

SUPPORTED_MODEL_TYPES = ("llama",)
# A shape derived from a parameter budget scales FFN width and head count by a factor w, and depth and the hidden
# size by w ** 0.5: the residual width feeds every projection and the LM head, so it is the costliest size to cut
# (on SmolLM2-135M, removing 25% of the hidden channels costs more perplexity than removing 27% of the layers or
# half the FFN), while DRAMA's 1B -> 0.1B kept 12 of 16 layers.
DEPTH_EXPONENT = 0.5
HIDDEN_EXPONENT = 0.5
HIDDEN_MULTIPLE = 8
INTERMEDIATE_MULTIPLE = 8
_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}


class PruningTargetError(ValueError):
    """A target shape that cannot be built from the source model; the message lists every problem."""


@dataclass(frozen=True)
class ModelShape:
    """Every size of a Llama model that pruning changes or that parameter counts depend on."""

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    mlp_bias: bool = False

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """The shape of a transformers Llama config."""
        num_heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // num_heads
        return cls(
            num_layers=config.num_hidden_layers,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_heads=num_heads,
            num_kv_heads=getattr(config, "num_key_value_heads", None) or num_heads,
            head_dim=head_dim,
            vocab_size=config.vocab_size,
            tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            attention_bias=bool(getattr(config, "attention_bias", False)),
            mlp_bias=bool(getattr(config, "mlp_bias", False)),
        )

    @property
    def group_size(self) -> int:
        """Query heads per KV head."""
        return self.num_heads // self.num_kv_heads

    def layer_parameters(self) -> int:
        """Parameters of one decoder layer (attention, MLP and its two RMSNorms)."""
        hidden, heads, kv_heads, head_dim = self.hidden_size, self.num_heads, self.num_kv_heads, self.head_dim
        attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
        if self.attention_bias:
            attention += heads * head_dim + 2 * kv_heads * head_dim + hidden
        mlp = 3 * hidden * self.intermediate_size
        if self.mlp_bias:
            mlp += 2 * self.intermediate_size + hidden
        return attention + mlp + 2 * hidden

    def non_embedding_parameters(self) -> int:
        """Parameters outside the token embeddings and LM head: the decoder layers and the final norm."""
        return self.num_layers * self.layer_parameters() + self.hidden_size

    def embedding_parameters(self) -> int:
        """Token embeddings plus the LM head when it is not tied to them."""
        copies = 1 if self.tie_word_embeddings else 2
        return copies * self.vocab_size * self.hidden_size

    def total_parameters(self) -> int:
        """All parameters of a ``LlamaForCausalLM`` of this shape (tied weights counted once)."""
        return self.non_embedding_parameters() + self.embedding_parameters()

    def pruned_sizes(self) -> dict[str, int]:
        """The sizes a target can set, by :class:`PruningTarget` field name."""
        return {name: getattr(self, name) for name in PRUNABLE_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRUNABLE_FIELDS = ("num_layers", "hidden_size", "intermediate_size", "num_heads", "num_kv_heads")


@dataclass(frozen=True)
class PruningTarget:
    """The shape to prune to. Give any of the sizes, or a budget of non-embedding parameters (``params``, e.g.
    ``"60M"``) from which the sizes you leave out are derived in balance; sizes neither given nor derived stay as
    in the source. ``num_kv_heads`` alone keeps the source's heads per KV group; ``num_heads`` alone removes whole
    KV groups when it is a multiple of the group size, and otherwise keeps as many KV groups as divide it.

    Args:
        num_layers: Decoder layers to keep (the least influential are dropped).
        hidden_size: Width of the residual stream (embedding channels).
        intermediate_size: FFN neurons per layer.
        num_heads: Query heads per layer.
        num_kv_heads: Key/value heads (GQA groups) per layer; must divide ``num_heads``.
        params: Budget of non-embedding parameters (decoder layers and final norm), as an int or a string like
            ``"60M"``, ``"0.1B"``; the derived shape has at most this many.
    """

    num_layers: int | None = None
    hidden_size: int | None = None
    intermediate_size: int | None = None
    num_heads: int | None = None
    num_kv_heads: int | None = None
    params: int | str | None = None

    def given_sizes(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in PRUNABLE_FIELDS if getattr(self, name) is not None}

    def to_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self) if getattr(self, field.name)}

    def resolve(self, source: Any) -> ModelShape:
        """The concrete shape this target means for ``source`` (a ``ModelShape`` or a transformers config).

        Raises:
            PruningTargetError: naming every problem (larger than the source, heads not dividing, an impossible
                parameter budget, ...).
        """
        source_shape = source if isinstance(source, ModelShape) else _checked_source_shape(source)
        problems = list(_size_problems(self, source_shape))
        budget = _parsed_budget(self.params, problems)
        if problems:
            raise _target_error(problems, source_shape)
        given = self.given_sizes()
        if budget is None:
            shape = _shape_without_budget(given, source_shape, problems)
        else:
            shape = _shape_for_budget(given, budget, source_shape, problems)
        if problems or shape is None:
            raise _target_error(problems, source_shape)
        return shape


def parse_parameter_count(value: int | float | str) -> int:
    """``60_000_000``, ``"60M"``, ``"0.1B"``, ``"250k"``, ``"1.5e7"`` -> an int number of parameters."""
    if isinstance(value, bool):
        raise ValueError(f"Not a parameter count: {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgG]?)\s*", str(value))
        if not match:
            raise ValueError(f"Not a parameter count: {value!r} (use e.g. 60000000, '60M' or '0.1B')")
        number = float(match.group(1)) * _SUFFIXES[match.group(2).upper()]
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"A parameter count must be positive, got {value!r}")
    return round(number)


def _checked_source_shape(config: Any) -> ModelShape:
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise PruningTargetError(
            f"Structured pruning supports Llama models (model_type {SUPPORTED_MODEL_TYPES}), not {model_type!r}."
        )
    return ModelShape.from_config(config)


def _size_problems(target: PruningTarget, source: ModelShape) -> Iterator[str]:
    given = target.given_sizes()
    for name, value in given.items():
        source_value = getattr(source, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            yield f"{name} must be a positive integer, got {value!r}"
        elif value > source_value:
            yield f"{name}={value} is larger than the source's {source_value}; pruning only removes"
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in given.values()):
        return
    heads, kv_heads = given.get("num_heads"), given.get("num_kv_heads")
    if heads is not None and kv_heads is None and all(h != heads for h, _ in valid_head_layouts(source)):
        yield (
            f"num_heads={heads} cannot be split into at most {source.num_kv_heads} KV groups of at most "
            f"{source.group_size} heads each (heads are kept within their KV group)"
        )
    if heads is not None and kv_heads is not None:
        if heads % kv_heads:
            yield f"num_kv_heads={kv_heads} does not divide num_heads={heads}"
        elif heads // kv_heads > source.group_size:
            yield (
                f"num_heads={heads} with num_kv_heads={kv_heads} needs {heads // kv_heads} query heads per KV group, "
                f"but the source has only {source.group_size} per group (heads are kept within their KV group)"
            )
    hidden = given.get("hidden_size")
    if heads is not None and hidden is not None and hidden % heads:
        yield (
            f"hidden_size={hidden} is not a multiple of num_heads={heads}, which transformers' LlamaConfig requires "
            f"(head_dim stays {source.head_dim})"
        )
    if set(PRUNABLE_FIELDS) <= set(given) and target.params is not None:
        yield "params was given together with every size; leave some size out for the budget to decide"


def _parsed_budget(params: int | str | None, problems: list[str]) -> int | None:
    if params is None:
        return None
    try:
        return parse_parameter_count(params)
    except ValueError as error:
        problems.append(f"params: {error}")
        return None


def _target_error(problems: list[str], source: ModelShape) -> PruningTargetError:
    source_text = ", ".join(f"{name}={value}" for name, value in source.pruned_sizes().items())
    listed = "\n".join(f"  - {problem}" for problem in problems)
    return PruningTargetError(f"Invalid pruning target for the source model ({source_text}):\n{listed}")


def valid_head_layouts(source: ModelShape) -> list[tuple[int, int]]:
    """Every ``(num_heads, num_kv_heads)`` reachable from the source by keeping whole KV groups and the same
    number of query heads in each."""
    return [
        (kv_heads * per_group, kv_heads)
        for kv_heads in range(1, source.num_kv_heads + 1)
        for per_group in range(1, source.group_size + 1)
    ]


def _head_layout(
    source: ModelShape, given: dict[str, int], wanted_heads: float, wanted_kv: float
) -> tuple[int, int] | None:
    """The valid layout matching the given sizes, closest to the wanted counts (more KV groups on a tie)."""
    heads, kv_heads, hidden = given.get("num_heads"), given.get("num_kv_heads"), given.get("hidden_size")
    layouts = [
        (h, k)
        for h, k in valid_head_layouts(source)
        if heads in (None, h) and kv_heads in (None, k) and (hidden is None or hidden % h == 0)
    ]
    if not layouts:
        return None
    return min(layouts, key=lambda layout: (abs(layout[0] - wanted_heads), abs(layout[1] - wanted_kv), -layout[1]))


def _shape_without_budget(given: dict[str, int], source: ModelShape, problems: list[str]) -> ModelShape | None:
    heads, kv_heads = given.get("num_heads"), given.get("num_kv_heads")
    if heads is None and kv_heads is None:
        heads, kv_heads = source.num_heads, source.num_kv_heads
    elif kv_heads is None:
        # Whole KV groups go first (each kept KV head still serves the heads it was trained with); otherwise keep
        # as many groups as divide the head count.
        whole_groups = heads // source.group_size if heads % source.group_size == 0 else None
        kv_heads = whole_groups or max(k for h, k in valid_head_layouts(source) if h == heads)
    elif heads is None:
        heads = kv_heads * source.group_size
    shape = replace(
        source,
        num_layers=given.get("num_layers", source.num_layers),
        hidden_size=given.get("hidden_size", source.hidden_size),
        intermediate_size=given.get("intermediate_size", source.intermediate_size),
        num_heads=heads,
        num_kv_heads=kv_heads,
    )
    _check_hidden_fits_heads(shape, "hidden_size" in given, problems)
    return shape


def _check_hidden_fits_heads(shape: ModelShape, hidden_given: bool, problems: list[str]) -> None:
    if shape.hidden_size % shape.num_heads == 0:
        return
    lower = shape.hidden_size - shape.hidden_size % shape.num_heads
    nearby = [size for size in (lower, lower + shape.num_heads) if size > 0]
    where = "hidden_size" if hidden_given else f"the source's hidden_size={shape.hidden_size} (kept)"
    problems.append(
        f"{where} is not a multiple of num_heads={shape.num_heads}, which transformers' LlamaConfig requires "
        f"(head_dim stays {shape.head_dim}); choose hidden_size {' or '.join(map(str, nearby))}, or other heads"
    )


def _round_to_multiple(value: float, multiple: int, upper: int) -> int:
    rounded = max(multiple, round(value / multiple) * multiple)
    return min(rounded, upper - upper % multiple) if upper >= multiple else upper


def _hidden_multiple(heads: int, wanted: float) -> int:
    """Hidden sizes stay multiples of the head count (LlamaConfig) and, where that is not too coarse, of 8."""
    preferred = math.lcm(heads, HIDDEN_MULTIPLE)
    return preferred if preferred * 2 <= wanted else heads


def _scaled_shape(given: dict[str, int], source: ModelShape, width: float) -> ModelShape | None:
    """The shape with the free FFN width and head count scaled by ``width``, depth and hidden size by
    ``width ** DEPTH_EXPONENT`` and ``width ** HIDDEN_EXPONENT``; None when the given sizes admit no valid head
    layout."""
    layout = _head_layout(source, given, wanted_heads=source.num_heads * width, wanted_kv=source.num_kv_heads * width)
    if layout is None:
        return None
    heads, kv_heads = layout
    if "hidden_size" in given:
        hidden = given["hidden_size"]
    else:
        wanted_hidden = source.hidden_size * width**HIDDEN_EXPONENT
        hidden = _round_to_multiple(wanted_hidden, _hidden_multiple(heads, wanted_hidden), source.hidden_size)
    layers = given.get("num_layers") or max(1, round(source.num_layers * width**DEPTH_EXPONENT))
    intermediate = given.get("intermediate_size") or _round_to_multiple(
        source.intermediate_size * width, INTERMEDIATE_MULTIPLE, source.intermediate_size
    )
    return replace(
        source,
        num_layers=layers,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_heads=heads,
        num_kv_heads=kv_heads,
    )


def _fill_intermediate(shape: ModelShape, budget: int, source: ModelShape) -> ModelShape:
    """Spend what rounding left of the budget on FFN neurons (the finest-grained size)."""
    per_neuron = shape.num_layers * (3 * shape.hidden_size + (2 if shape.mlp_bias else 0))
    spare = budget - shape.non_embedding_parameters()
    extra = (spare // per_neuron) // INTERMEDIATE_MULTIPLE * INTERMEDIATE_MULTIPLE
    return replace(shape, intermediate_size=min(source.intermediate_size, shape.intermediate_size + max(0, extra)))


def _shape_for_budget(
    given: dict[str, int], budget: int, source: ModelShape, problems: list[str]
) -> ModelShape | None:
    source_params = source.non_embedding_parameters()
    if budget > source_params:
        problems.append(f"params={budget:,} exceeds the source's {source_params:,} non-embedding parameters")
        return None
    candidates = (_scaled_shape(given, source, step / 1000) for step in range(1000, 0, -1))
    for shape in candidates:
        if shape is None:
            break
        if shape.non_embedding_parameters() <= budget:
            if "intermediate_size" not in given:
                shape = _fill_intermediate(shape, budget, source)
            return shape
    if not problems:
        smallest = _scaled_shape(given, source, 0.001)
        if smallest is None:
            problems.append(
                "the given hidden_size/num_heads/num_kv_heads admit no valid GQA layout (hidden_size must be a "
                "multiple of num_heads, and num_kv_heads must divide num_heads)"
            )
        else:
            problems.append(
                f"params={budget:,} is below the smallest shape the given sizes allow "
                f"({smallest.non_embedding_parameters():,} non-embedding parameters)"
            )
    return None
