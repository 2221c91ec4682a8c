"""The published DRAMA and LLaRA checkpoints as sentence-transformers folders that reproduce their documented usage.

- **DRAMA** (``facebook/drama-base``, ``-large``, ``-1b``): a Llama model whose remote code runs it bidirectionally,
  mean-pools every token (the ``Query: `` prefix and EOS included) and normalises. That code relies on a
  transformers hook that is no longer called (dpr-scale issue #20), so on current transformers it runs causally and
  its own demo scores come out wrong. Converted, it is a standard sentence-transformers folder (``is_causal: false``
  in its config, mean pooling, ``Query: `` prompt, EOS from the tokenizer) that loads with plain
  ``SentenceTransformer(folder)``; its Matryoshka sizes go through ``truncate_dim``.
- **LLaRA** (``BAAI/LLARA-passage`` and siblings): a causal Llama-2 whose tokenizer carries ``<s1>``..``<s16>``.
  A query is ``"`` + query + ``", predict the following passage within eight words: <s9>..<s16>``, a passage the
  same with ``summarize the above passage`` and ``<s1>``..``<s8>``, the three parts tokenized apart; the embedding
  is the normalised mean of the last layer at those eight tokens. Converted, it is an st-drama LLaRA-style folder
  (its framing needs st-drama's modules, shipped in the folder).

Weights are never fetched here when the Hugging Face Hub cannot be reached: pass a local copy.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .runs import check_output_dir

logger = logging.getLogger(__name__)

RELEASES = ("drama", "llara")
DRAMA_QUERY_PREFIX = "Query: "
DRAMA_MAX_SEQ_LENGTH = 8192
# DRAMA's Matryoshka sizes below the full one: 1024 -> 512/256 (base, large); the 1B model (2048) also 768.
DRAMA_MATRYOSHKA_DIMS = (768, 512, 256)
LLARA_MAX_SEQ_LENGTH = 512
LLARA_QUERY_SUFFIX = '", predict the following passage within eight words: '
LLARA_PASSAGE_SUFFIX = '", summarize the above passage within eight words: '
LLARA_QUERY_TOKENS = [f"<s{index}>" for index in range(9, 17)]
LLARA_PASSAGE_TOKENS = [f"<s{index}>" for index in range(1, 9)]
# The check DRAMA's model card gives for its two MIRACL examples (cosine, full size and truncate_dim=256).
DRAMA_DEMO_SCORES = {"full": [[0.5310, 0.0821], [0.1298, 0.6181]], "256": [[0.6031, 0.1750], [0.2005, 0.7251]]}
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class ReleaseUnavailableError(RuntimeError):
    """A release that is neither a local folder nor downloadable here."""


def convert_release(
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    release: str | None = None,
    max_seq_length: int | None = None,
) -> Any:
    """Convert a DRAMA or LLaRA release (local folder or hub id) into ``output_dir``; returns the
    SentenceTransformer.

    Args:
        source: The release folder (or its hub id, downloaded when the hub is reachable).
        output_dir: Where the converted folder goes (new or empty).
        release: ``"drama"`` or ``"llara"``; None tells them apart by their layout.
        max_seq_length: Maximum tokens per text (default: DRAMA's 8192, LLaRA's 512).
    """
    output_dir = check_output_dir(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ValueError(f"{output_dir} is not empty; convert into a new or empty folder.")
    folder = release_folder(source)
    release = release or detect_release(folder)
    if release not in RELEASES:
        raise ValueError(f"release must be one of {RELEASES}, got {release!r}.")
    if release == "drama":
        return convert_drama(folder, output_dir, max_seq_length or DRAMA_MAX_SEQ_LENGTH, str(source))
    return convert_llara(folder, output_dir, max_seq_length or LLARA_MAX_SEQ_LENGTH, str(source))


def release_folder(source: str | os.PathLike) -> Path:
    """A local release folder: ``source`` itself, or its hub download; a clear error when neither is possible."""
    path = Path(source).expanduser()
    if path.is_dir():
        _check_release_files(path)
        return path
    if path.exists() or str(source).count("/") != 1:
        raise ReleaseUnavailableError(f"{source}: not a release folder (a folder with config.json and weights).")
    try:
        from huggingface_hub import snapshot_download

        downloaded = Path(snapshot_download(str(source)))
    except Exception as error:
        raise ReleaseUnavailableError(
            f"{source} is not a local folder and could not be downloaded from the Hugging Face Hub "
            f"({type(error).__name__}). Download it where the hub is reachable (`huggingface-cli download {source} "
            "--local-dir DIR`) and pass DIR."
        ) from error
    _check_release_files(downloaded)
    return downloaded


def detect_release(folder: Path) -> str:
    """``"drama"`` for a config naming DRAMA's remote model class, ``"llara"`` for a tokenizer with LLaRA's sixteen
    prompt tokens; an error for anything else."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    declared = json.dumps({"architectures": config.get("architectures"), "auto_map": config.get("auto_map")})
    if "Drama" in declared:
        return "drama"
    vocabulary = _tokenizer_vocabulary(folder)
    if all(token in vocabulary for token in (*LLARA_PASSAGE_TOKENS, *LLARA_QUERY_TOKENS)):
        return "llara"
    raise ValueError(
        f"{folder} is neither a DRAMA release (no DramaModel in config.json) nor a LLaRA release (its tokenizer "
        "lacks <s1>..<s16>); pass release='drama' or 'llara' (--release) if you know which."
    )


def convert_drama(folder: Path, output_dir: Path, max_seq_length: int, source: str) -> Any:
    """DRAMA as sentence-transformers' own modules (see the module docstring)."""
    from .model_card import retriever_card_data
    from .models.standard import standard_drama_model

    with tempfile.TemporaryDirectory(prefix="st_drama_convert_") as staging:
        plain = _plain_llama_copy(folder, Path(staging))
        model = standard_drama_model(str(plain), max_seq_length, DRAMA_QUERY_PREFIX)
        sizes = drama_matryoshka_dims(model.get_embedding_dimension())
        retriever_card_data(
            model,
            model_name=f"DRAMA ({Path(source).name}) for sentence-transformers",
            base_model=source if _is_hub_id(source) else None,
            matryoshka_dims=sizes,
            notes=_drama_notes(source),
        )
        model.save(str(output_dir))
    _write_provenance(output_dir, "drama", source, sizes)
    return model


def convert_llara(folder: Path, output_dir: Path, max_seq_length: int, source: str) -> Any:
    """LLaRA as an st-drama LLaRA-style folder (see the module docstring)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize

    from .model_card import RetrieverCardData
    from .models import LlamaBackbone, TokenPooling
    from .models.task_formats import task_prompt

    task_formats = {
        "query": {"prefix": '"', "suffix": LLARA_QUERY_SUFFIX, "special_tokens": LLARA_QUERY_TOKENS},
        "document": {"prefix": '"', "suffix": LLARA_PASSAGE_SUFFIX, "special_tokens": LLARA_PASSAGE_TOKENS},
    }
    backbone = LlamaBackbone(
        str(folder),
        attention="causal",
        max_seq_length=max_seq_length,
        prompt_style="llara",
        task_formats=task_formats,
        append_eos=False,
        tokenize_prefix_apart=True,
    )
    card = RetrieverCardData(
        local_files_only=True,
        model_name=f"LLaRA ({Path(source).name}) for sentence-transformers",
        notes=[
            f"Converted from `{source}` by `st-drama convert`: the release's framing (the query and passage prompts "
            "with <s9>..<s16> and <s1>..<s8>, prefix, text and suffix tokenized apart) and its embedding (the mean "
            "of the last layer at those eight tokens, normalised).",
            "Batches are padded on the right with positions counted from each text's start; the release's own code "
            "pads on the left, which gives the same embeddings (rotary positions are relative).",
        ],
    )
    card.base_model = source if _is_hub_id(source) else None
    model = SentenceTransformer(
        modules=[backbone, TokenPooling(backbone.get_embedding_dimension(), mode="prompt_tokens"), Normalize()],
        similarity_fn_name="cosine",
        prompts={task: task_prompt(task_format) for task, task_format in task_formats.items()},
        model_card_data=card,
    )
    model.save(str(output_dir))
    _write_provenance(output_dir, "llara", source, [])
    return model


def drama_matryoshka_dims(hidden_size: int) -> list[int]:
    """DRAMA's truncations below the full size: 512 and 256, and 768 for the 1B model (2048)."""
    return [size for size in DRAMA_MATRYOSHKA_DIMS if size < hidden_size and (size != 768 or hidden_size >= 2048)]


def _plain_llama_copy(folder: Path, staging: Path) -> Path:
    """The release's files with a config that plain transformers loads as ``LlamaModel`` (no remote code)."""
    target = staging / "model"
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("*.py", ".git*", "README.md"))
    config_path = target / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("model_type") != "llama":
        raise ValueError(f"{folder}/config.json: model_type {config.get('model_type')!r}, expected 'llama' (DRAMA).")
    config.pop("auto_map", None)
    config["architectures"] = ["LlamaModel"]
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return target


def _check_release_files(folder: Path) -> None:
    missing = [name for name in ("config.json",) if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in _WEIGHT_FILES):
        missing.append(f"weights ({' or '.join(_WEIGHT_FILES[::2])})")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        missing.append("a tokenizer (tokenizer.json or tokenizer.model)")
    if missing:
        raise ReleaseUnavailableError(f"{folder} is not a release folder: missing {', '.join(missing)}.")


def _tokenizer_vocabulary(folder: Path) -> set[str]:
    from transformers import AutoTokenizer

    return set(AutoTokenizer.from_pretrained(str(folder)).get_vocab())


def _is_hub_id(source: str) -> bool:
    return source.count("/") == 1 and not Path(source).exists()


def _drama_notes(source: str) -> list[str]:
    full, small = DRAMA_DEMO_SCORES["full"], DRAMA_DEMO_SCORES["256"]
    return [
        f"Converted from `{source}` by `st-drama convert`: DRAMA's documented usage (bidirectional attention, mean "
        "pooling over every token, `Query: ` before queries, EOS appended, normalised) in sentence-transformers' "
        "own modules.",
        "Check against DRAMA's model card: its two MIRACL example queries and documents give "
        f"`model.similarity(model.encode_query(queries), model.encode_document(documents))` = {full}, and with "
        f"`truncate_dim=256` {small}. DRAMA's own remote code prints other numbers on current transformers: it runs "
        "causally there (dpr-scale issue #20).",
    ]


def _write_provenance(output_dir: Path, release: str, source: str, matryoshka_dims: list[int]) -> None:
    record = {"release": release, "source": source, "matryoshka_dims": matryoshka_dims}
    (output_dir / "st_drama_conversion.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
