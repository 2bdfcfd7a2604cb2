import os
import sys

# the tiny-file writers of the data tests (tests/data/data_writers.py)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "data"))
