"""``recon report RUNS_DIR``: our results beside the paper's, as one Markdown table.

Collects every ``*.json`` under RUNS_DIR that holds a result (``protocol``, ``dataset``, ``value``;
schema in :mod:`recon.eval.results`) and lines each up with the ReCon paper's figure for the same
protocol and setting.  Paper figures are quoted from the ReCon paper (ICML 2023, Tables 1-3 and 10)
for the full-size ReCon model; where we are not certain of a figure the cell says "see paper".
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from recon.errors import MissingFileError

log = logging.getLogger("recon.eval")

# (protocol, dataset, match, paper value, paper std, what the paper's number is).
# `match` holds result fields that must equal for a result to be compared with this row.
PAPER = [
    ("finetune", "scan_objbg", {}, 95.18, None, "Table 1, ScanObjectNN OBJ_BG (official voting)"),
    ("finetune", "scan_objonly", {}, 93.63, None, "Table 1, ScanObjectNN OBJ_ONLY (official voting)"),
    ("finetune", "scan_hardest", {}, 90.63, None, "Table 1, ScanObjectNN PB_T50_RS (official voting)"),
    ("finetune", "modelnet40", {"npoints": 1024}, 94.5, None, "Table 1, ModelNet40 1k points"),
    ("finetune", "modelnet40", {"npoints": 8192}, 94.7, None, "Table 1, ModelNet40 8k points, with voting"),
    ("fewshot", "modelnet40", {"way": 5, "shot": 10}, 97.3, 1.9, "Table 2, 5-way 10-shot"),
    ("fewshot", "modelnet40", {"way": 5, "shot": 20}, 98.9, 1.2, "Table 2, 5-way 20-shot"),
    ("fewshot", "modelnet40", {"way": 10, "shot": 10}, 93.3, 3.9, "Table 2, 10-way 10-shot"),
    ("fewshot", "modelnet40", {"way": 10, "shot": 20}, 95.8, 3.0, "Table 2, 10-way 20-shot"),
    ("zeroshot", "modelnet10", {"merge_train": False}, 75.6, None, "Table 3, ModelNet10"),
    ("zeroshot", "modelnet40", {"merge_train": False}, 61.7, None, "Table 3, ModelNet40"),
    ("svm", "modelnet40", {}, 93.4, None, "Table 10, linear SVM ModelNet40"),
]
# The finetune protocols are reported by ``recon test`` as protocol "test"; both names match.
_ALIASES = {"test": "finetune"}


def collect(runs_dir) -> list[dict]:
    """Every result JSON under ``runs_dir`` (files without ``protocol``/``value`` are skipped)."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise MissingFileError(f"RUNS_DIR: no directory {str(root)!r}")
    found = []
    for path in sorted(root.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.info(f"skipped {path}: not JSON")
            continue
        if isinstance(data, dict) and {"protocol", "dataset", "value"} <= set(data):
            found.append(dict(data, _file=str(path.relative_to(root))))
    return found


def _matches(result: dict, protocol: str, dataset: str, match: dict) -> bool:
    proto = _ALIASES.get(result["protocol"], result["protocol"])
    return proto == protocol and result["dataset"] == dataset and all(result.get(k) == v for k, v in match.items())


def _fmt(value, std) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def build_report(results: list[dict]) -> str:
    """Markdown: one row per paper figure (ours beside it), then our rows with no paper counterpart."""
    lines = [
        "| protocol | dataset | setting | ours | paper (ReCon) | paper's figure | our file |",
        "|---|---|---|---|---|---|---|",
    ]
    used = set()
    for protocol, dataset, match, value, std, what in PAPER:
        mine = [i for i, r in enumerate(results) if _matches(r, protocol, dataset, match)]
        used.update(mine)
        if not mine:
            lines.append(f"| {protocol} | {dataset} | {_setting(match)} | — | {_fmt(value, std)} | {what} | |")
        for i in mine:
            r = results[i]
            lines.append(f"| {protocol} | {dataset} | {_ours_setting(r)} | {_fmt(r['value'], r.get('std'))} | "
                         f"{_fmt(value, std)} | {what} | {r['_file']} |")
    for i, r in enumerate(results):
        if i not in used:
            lines.append(f"| {r['protocol']} | {r['dataset']} | {_ours_setting(r)} | {_fmt(r['value'], r.get('std'))} "
                         f"| see paper | no paper figure for this setting | {r['_file']} |")
    notes = [
        "",
        "Paper figures are those of the ReCon paper (ICML 2023) for the full-size model (ReCon-Base), quoted, "
        "not re-measured; they were obtained with the official protocol (best of repeated voting passes, "
        "checkpoint chosen on the test split). Our figures use recon's honest defaults unless the setting "
        "column says otherwise. Zero-shot rows of the paper's '*' (train+test) setting and ScanObjectNN "
        "zero-shot: see paper.",
    ]
    return "\n".join(lines + notes)


def _setting(match: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in match.items()) or "—"


def _ours_setting(r: dict) -> str:
    setting = str(r.get("setting", "")) or "—"
    notes = r.get("notes") or []
    return setting + (f" ({'; '.join(notes)})" if notes else "")
