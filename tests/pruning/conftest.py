from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def single_thread():
    """Tiny models gain nothing from a second thread, while on a busy 2-core machine OpenMP's barriers make every
    training step several times slower; undone after the package."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
