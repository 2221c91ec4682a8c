from __future__ import annotations

import pytest

from st_drama.runs import (
    RunSettingsMismatchError,
    check_output_dir,
    check_run_settings,
    checkpoint_to_resume,
    fingerprint,
    latest_checkpoint,
)


def make_checkpoint(folder, step: int, complete: bool = True):
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    if complete:
        (checkpoint / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    return checkpoint


def test_fingerprints_follow_the_settings_not_their_order():
    assert fingerprint({"a": 1, "b": (2, 3)}) == fingerprint({"b": [2, 3], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_the_latest_complete_checkpoint_is_resumed_never_one_cut_short(tmp_path):
    assert latest_checkpoint(tmp_path / "none") is None
    make_checkpoint(tmp_path, 2)
    make_checkpoint(tmp_path, 10)
    make_checkpoint(tmp_path, 12, complete=False)  # killed while writing it
    assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")


def test_a_checkpoint_folder_resumes_only_the_run_that_wrote_it(tmp_path):
    settings = {"steps": 4, "learning_rate": 1e-4}
    assert checkpoint_to_resume(tmp_path, settings, resume=True) is None  # fresh: settings recorded
    make_checkpoint(tmp_path, 2)
    assert checkpoint_to_resume(tmp_path, settings, resume=True) == str(tmp_path / "checkpoint-2")
    with pytest.raises(ValueError, match="pass resume=True"):
        checkpoint_to_resume(tmp_path, settings, resume=False)
    with pytest.raises(RunSettingsMismatchError, match=r"learning_rate: 0.0001 -> 0.001"):
        checkpoint_to_resume(tmp_path, {**settings, "learning_rate": 1e-3}, resume=True)


def test_recorded_settings_guard_an_output_folder(tmp_path):
    record = tmp_path / "run.json"
    assert check_run_settings(record, {"seed": 1}, "the run") is False
    assert check_run_settings(record, {"seed": 1}, "the run") is True
    with pytest.raises(RunSettingsMismatchError, match=r"the run was started with other settings \(seed: 1 -> 2"):
        check_run_settings(record, {"seed": 2}, "the run")


def test_an_output_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file; the output must be a folder"):
        check_output_dir(tmp_path / "file")
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"
