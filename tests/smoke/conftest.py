import os
import sys

# the tiny-file writers of the data tests (tests/data/data_writers.py) and of the part-seg tests
# (tests/partseg/partseg_writers.py)
for _folder in ("data", "partseg"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", _folder))
