"""How a text is framed for each task (query or document) in the DRAMA and LLaRA styles.

Portable: no imports outside the standard library, so it can be shipped inside a saved model folder.

A task format is a dict with ``prefix`` (text before the input), ``suffix`` (text after it) and
``special_tokens`` (added tokens placed after the suffix; LLaRA pools and predicts from them).
"""

from __future__ import annotations

PROMPT_STYLES = ("drama", "llara", "none")
DRAMA_QUERY_PREFIX = "Query: "
LLARA_DEFAULT_PROMPT_TOKENS = 8
# LLaRA's prompts: EBAE asks the model to summarise the text itself, EBAR to predict the passage that follows it.
LLARA_EBAE_SUFFIX = '", summarize the above passage within {count} words:'
LLARA_EBAR_SUFFIX = '", predict the following passage within {count} words:'
LLARA_PREFIX = '"'
EBAE_TOKEN_TEMPLATE = "<|ebae_{index}|>"
EBAR_TOKEN_TEMPLATE = "<|ebar_{index}|>"

_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
]


def number_word(count: int) -> str:
    return _NUMBER_WORDS[count] if 0 <= count < len(_NUMBER_WORDS) else str(count)


def ebae_tokens(num_prompt_tokens: int) -> list[str]:
    return [EBAE_TOKEN_TEMPLATE.format(index=index) for index in range(1, num_prompt_tokens + 1)]


def ebar_tokens(num_prompt_tokens: int) -> list[str]:
    return [EBAR_TOKEN_TEMPLATE.format(index=index) for index in range(1, num_prompt_tokens + 1)]


def ebae_format(num_prompt_tokens: int = LLARA_DEFAULT_PROMPT_TOKENS) -> dict:
    """LLaRA's EBAE framing (documents when fine-tuning)."""
    return {
        "prefix": LLARA_PREFIX,
        "suffix": LLARA_EBAE_SUFFIX.format(count=number_word(num_prompt_tokens)),
        "special_tokens": ebae_tokens(num_prompt_tokens),
    }


def ebar_format(num_prompt_tokens: int = LLARA_DEFAULT_PROMPT_TOKENS) -> dict:
    """LLaRA's EBAR framing (queries when fine-tuning)."""
    return {
        "prefix": LLARA_PREFIX,
        "suffix": LLARA_EBAR_SUFFIX.format(count=number_word(num_prompt_tokens)),
        "special_tokens": ebar_tokens(num_prompt_tokens),
    }


def default_task_formats(
    prompt_style: str,
    query_prefix: str = DRAMA_QUERY_PREFIX,
    num_prompt_tokens: int = LLARA_DEFAULT_PROMPT_TOKENS,
) -> dict[str, dict]:
    """The ``{"query": format, "document": format}`` mapping of a prompt style."""
    if prompt_style == "drama":
        return {
            "query": {"prefix": query_prefix, "suffix": "", "special_tokens": []},
            "document": {"prefix": "", "suffix": "", "special_tokens": []},
        }
    if prompt_style == "llara":
        if num_prompt_tokens < 1:
            raise ValueError(f"num_prompt_tokens must be at least 1 for the LLaRA style, got {num_prompt_tokens}.")
        return {"query": ebar_format(num_prompt_tokens), "document": ebae_format(num_prompt_tokens)}
    if prompt_style == "none":
        plain = {"prefix": "", "suffix": "", "special_tokens": []}
        return {"query": dict(plain), "document": dict(plain)}
    raise ValueError(f"Unknown prompt_style {prompt_style!r}; expected one of {PROMPT_STYLES}.")


def task_prompt(task_format: dict) -> str:
    """The prompt string that names a task's framing in the model's ``prompts``: the prefix when the framing is a
    plain prefix (what sentence-transformers' prompts are), else the suffix's instruction (LLaRA's)."""
    if not task_format["suffix"] and not task_format["special_tokens"]:
        return task_format["prefix"]
    return task_format["suffix"].lstrip('", ').strip()


def validate_task_formats(task_formats: dict) -> dict[str, dict]:
    """Check the structure of user-given task formats and fill missing fields, naming the bad field."""
    if not isinstance(task_formats, dict) or not task_formats:
        raise ValueError("task_formats must be a non-empty dict mapping task names to formats.")
    checked = {}
    for task, task_format in task_formats.items():
        if not isinstance(task_format, dict):
            raise ValueError(f"task_formats[{task!r}] must be a dict with prefix/suffix/special_tokens.")
        unknown = set(task_format) - {"prefix", "suffix", "special_tokens"}
        if unknown:
            raise ValueError(f"task_formats[{task!r}] has unknown field(s) {sorted(unknown)}.")
        prefix = task_format.get("prefix", "")
        suffix = task_format.get("suffix", "")
        special_tokens = list(task_format.get("special_tokens", []))
        for field_name, value in (("prefix", prefix), ("suffix", suffix)):
            if not isinstance(value, str):
                raise ValueError(f"task_formats[{task!r}][{field_name!r}] must be a string, got {type(value)}.")
        if not all(isinstance(token, str) and token for token in special_tokens):
            raise ValueError(f"task_formats[{task!r}]['special_tokens'] must be non-empty strings.")
        checked[task] = {"prefix": prefix, "suffix": suffix, "special_tokens": special_tokens}
    return checked
