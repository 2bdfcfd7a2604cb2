"""Evaluation protocols of the ReCon paper: few-shot, zero-shot, linear SVM, voting, attention figure, report.

Each protocol module exposes ``add_<name>_parser(subparsers)`` (sets ``func``) and ``main_<name>(argv)``
for the ``recon`` command, plus plain functions for use from Python.
"""

from .fewshot import add_fewshot_parser, main_fewshot, run_grid
from .report import add_report_parser, main_report
from .svm import add_svm_parser, main_svm, svm_accuracy
from .visualize import add_visualize_parser, main_visualize, read_points
from .zeroshot import add_zeroshot_parser, class_text_features, main_zeroshot

PARSERS = (add_fewshot_parser, add_zeroshot_parser, add_svm_parser, add_visualize_parser, add_report_parser)

__all__ = [
    "PARSERS", "add_fewshot_parser", "add_report_parser", "add_svm_parser", "add_visualize_parser",
    "add_zeroshot_parser", "class_text_features", "main_fewshot", "main_report", "main_svm", "main_visualize",
    "main_zeroshot", "read_points", "run_grid", "svm_accuracy",
]
