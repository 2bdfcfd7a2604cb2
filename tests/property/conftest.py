"""Property-based tests over recon's public surface (hypothesis).

Runs derandomized (the same examples every run, so CI never flakes) with no example database;
``RECON_HYPOTHESIS=explore`` draws fresh random examples, ten times as many.
"""

import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "data"))  # data_writers: the official formats

_COMMON = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("explore", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("RECON_HYPOTHESIS", "ci"))
