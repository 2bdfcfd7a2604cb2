"""Fixtures for the evaluation tests (helpers live in eval_helpers.py)."""

import pytest
import torch
from eval_helpers import StandIn


@pytest.fixture
def standin():
    torch.manual_seed(0)
    return StandIn().eval()
