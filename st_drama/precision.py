"""Whether bf16 autocast is the fast choice on a device.

bf16 autocast is about 2.5x faster than float32 on CPUs with native bf16 instructions (AVX512-BF16, AMX) and on
recent GPUs, but about 3x *slower* on CPUs without them, where every bf16 matmul is emulated. Every "bf16 where
supported" default in st-drama goes through :func:`bf16_is_fast`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU advertises bf16 instructions (Linux ``/proc/cpuinfo``; False where it cannot be read)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = set(cpuinfo.split())
    return any(flag in flags for flag in NATIVE_BF16_CPU_FLAGS)


def bf16_is_fast(device: torch.device | str | None = None) -> bool:
    """Whether to use bf16 autocast by default on ``device`` (default: CUDA when available, else the CPU)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device_type = torch.device(device).type
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device_type == "cpu" and cpu_has_native_bf16()


def resolve_bf16(bf16: bool | None, device: torch.device | str | None = None) -> bool:
    """An explicit choice as given; ``None`` means bf16 where it is fast on ``device``."""
    return bf16_is_fast(device) if bf16 is None else bf16
