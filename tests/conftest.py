"""Shared fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's torch work on one thread: tiny models gain nothing from more, and on a shared CPU
    the extra threads spin while waiting (measured: 10x the CPU time under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
