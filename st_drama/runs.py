"""Run records, the one home for them: the fingerprint of a run's settings, the guard that lets a rerun resume only
work started with the same settings, and the latest Trainer checkpoint of a folder.

Every stage that resumes (training, LLaRA adaptation, pruning and its loops, augmentation, the pipeline's stages)
records its settings when it starts and compares them when it is run again: the same settings resume, other settings
are refused (or, in the pipeline, start that stage afresh), so work done with one recipe never mixes into another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
SETTINGS_FILE = "st_drama_run_settings.json"
TRAINER_STATE = "trainer_state.json"
FINGERPRINT_LENGTH = 16


class RunSettingsMismatchError(ValueError):
    """A folder holds work started with other settings; resuming would mix two runs."""


def normalized(settings: Any) -> Any:
    """``settings`` as plain JSON data (tuples as lists, paths and other objects as strings, keys sorted)."""
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def fingerprint(settings: Any, length: int = FINGERPRINT_LENGTH) -> str:
    """A short, stable hash of ``settings`` (anything :func:`normalized` accepts)."""
    text = json.dumps(normalized(settings), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def content_fingerprint(folder: str | os.PathLike, files: Sequence[str], length: int = FINGERPRINT_LENGTH) -> str:
    """A hash of the named files' names and bytes: the same for a copy of the data wherever and whenever it was
    written, so a run resumes after its data is copied or checked out again (file times would change)."""
    digest = hashlib.sha256()
    for relative in files:
        digest.update(relative.encode())
        with open(Path(folder) / relative, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:length]


def check_output_dir(path: str | os.PathLike) -> Path:
    """``path`` as a Path, or a ValueError when it exists and is not a folder (checked before any work starts)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; the output must be a folder (new, or one this command wrote before).")
    return path


def write_json_atomically(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary sibling and a rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON data in ``path``, or None when the file is missing or unreadable (an interrupted first write)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def settings_differences(recorded: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every top-level setting that differs."""
    settings = normalized(settings)
    return [
        f"{key}: {recorded.get(key)!r} -> {settings.get(key)!r}"
        for key in sorted(set(recorded) | set(settings))
        if recorded.get(key) != settings.get(key)
    ]


def check_run_settings(path: str | os.PathLike, settings: dict[str, Any], what: str) -> bool:
    """Record ``settings`` in ``path`` when it does not exist yet (returns False: a fresh run); when it does, return
    True if they are the same, else raise :class:`RunSettingsMismatchError` naming ``what`` and the differences."""
    path = Path(path)
    recorded = read_json(path)
    if recorded is None:
        write_json_atomically(path, normalized(settings))
        return False
    differences = settings_differences(recorded, settings)
    if differences:
        raise RunSettingsMismatchError(
            f"{what} was started with other settings ({'; '.join(differences)}; recorded in {path}). Rerun with the "
            "same settings to resume, or choose another output folder."
        )
    return True


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> str | None:
    """The complete Trainer checkpoint (``checkpoint-<step>`` holding its ``trainer_state.json``, which the Trainer
    writes last) with the highest step in ``checkpoint_dir``, if any: a run killed while writing a checkpoint
    resumes from the one before."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    steps = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := CHECKPOINT_PATTERN.match(path.name)) and (path / TRAINER_STATE).is_file()
    ]
    return str(max(steps)[1]) if steps else None


def checkpoint_step(checkpoint: str | os.PathLike) -> int:
    """The optimizer step a Trainer checkpoint was saved at."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state["global_step"])


def checkpoint_to_resume(checkpoint_dir: str | os.PathLike, settings: dict[str, Any], resume: bool) -> str | None:
    """The checkpoint a training run continues from, after checking it was written with the same ``settings``.

    A folder holding another run's checkpoints is an error, never silently resumed or overwritten; without
    ``resume``, existing checkpoints of this run are an error too (pass ``resume=True`` / ``--resume``). A fresh
    folder records the settings for the next run to compare.
    """
    folder = Path(checkpoint_dir)
    settings_file = folder / SETTINGS_FILE
    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        if resume:
            logger.info(f"No checkpoint in {folder} yet; starting from scratch.")
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomically(settings_file, normalized(settings))
        return None
    recorded = read_json(settings_file)
    differences = settings_differences(recorded, settings) if recorded is not None else ["no settings recorded"]
    if differences:
        raise RunSettingsMismatchError(
            f"{folder} holds checkpoints of a different run ({'; '.join(differences)}); use another output folder "
            "or delete that one."
        )
    if not resume:
        raise ValueError(
            f"{folder} already holds checkpoints ({Path(checkpoint).name}); pass resume=True (--resume) to continue "
            "that run, or choose another output folder."
        )
    logger.info(f"Resuming from {checkpoint}.")
    return checkpoint
