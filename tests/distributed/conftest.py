import sys

import pytest

import ddp_runs


@pytest.fixture
def subprocess_env():
    """Child processes: the checkout importable, 1 thread each, gloo on the loopback interface."""
    return ddp_runs.env()


@pytest.fixture
def python():
    return sys.executable
