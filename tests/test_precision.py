from __future__ import annotations

from pathlib import Path

import pytest
import torch

from st_drama.precision import NATIVE_BF16_CPU_FLAGS, bf16_is_fast, cpu_has_native_bf16
from st_drama.training.runtime import precision_arguments


def cpuinfo_flags() -> set[str]:
    try:
        return set(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return set()


def test_cpu_bf16_follows_the_cpu_flags():
    expected = any(flag in cpuinfo_flags() for flag in NATIVE_BF16_CPU_FLAGS)
    assert cpu_has_native_bf16() is expected
    assert bf16_is_fast("cpu") is expected


def test_training_precision_default_matches_the_device():
    arguments = precision_arguments(None)
    assert arguments["bf16"] is bf16_is_fast()
    assert precision_arguments(False)["bf16"] is False
    assert precision_arguments(True)["bf16"] is True


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU choice")
def test_augmentation_llm_autocast_default_matches_the_cpu():
    from st_drama.augment.llm import _autocast_dtype

    expected = torch.bfloat16 if cpu_has_native_bf16() else None
    assert _autocast_dtype("auto", torch.device("cpu")) is expected
    assert _autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert _autocast_dtype("fp32", torch.device("cpu")) is None
