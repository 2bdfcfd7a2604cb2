"""Evaluation protocols of the ReCon paper, as functions: few-shot grid, zero-shot, linear SVM,
attention figure, report; and the result files they write.

Modules: ``fewshot`` (the way x shot x fold grid with resume, episode pickles, the frozen-backbone
model), ``zeroshot`` (class text features, official ratios, scoring), ``svm`` (frozen features,
LinearSVC, feature cache), ``visualize`` (query attention over a cloud, PNG), ``report`` (our results
beside the paper's), ``results`` (the result-file schema and writer), ``frozen`` (a registry model
with a checkpoint's weights). The commands that drive them live in :mod:`recon.apps`.
"""

from .fewshot import run_grid
from .results import write_result
from .svm import svm_accuracy
from .visualize import read_points
from .zeroshot import class_text_features

__all__ = ["class_text_features", "read_points", "run_grid", "svm_accuracy", "write_result"]
