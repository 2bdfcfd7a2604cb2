"""``recon report RUNS_DIR``: our results beside the ReCon paper's figures, like with like.

Every paper figure carries its protocol (:class:`Protocol`: voting or not, how the reported
checkpoint/epoch was selected, which split was scored). One of our results is set beside a figure
only when it was produced under the *same* protocol, for the same dataset and setting (and, when
the result names its model, the same model family); every other result is listed separately with
the reason. A voting figure is therefore never paired with a non-voting run, nor a figure of the
official "best of 299 voting passes" with a single voting pass.

Results are read from ``RUNS_DIR`` recursively:

* result JSON files (``protocol``, ``dataset``, ``value``; schema in :mod:`recon.eval.results`),
  written by ``recon test --result``, ``recon fewshot``, ``recon zeroshot --out``, ``recon svm --out``.
  Optional explicit fields ``voting`` / ``selection`` / ``split`` (values as in :class:`Protocol`)
  override what is inferred from the older fields.
* finetune run folders (``summary.json`` with ``"task": "finetune"`` beside the run's
  ``config.yaml``): two results each, the single-pass test accuracy (no voting) and the voted one,
  both with the selection the config used (``eval.best_on``).

The paper figures and their protocols are listed (with sources) in docs/paper_tables.md; a
"README" source is the official repository's README.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import logging

from recon.errors import MissingFileError

_log = logging.getLogger("recon.eval")

__all__ = ["Protocol", "PaperFigure", "PAPER", "collect", "match", "build_report", "plot_report", "make_report"]

VOTINGS = ("none", "vote-1pass", "vote-max299")
SELECTIONS = ("test", "val", "last", "n/a")
SPLITS = ("test", "train+test", "train->test")
_VOTING_TEXT = {"none": "no voting", "vote-1pass": "voting: one pass",
                "vote-max299": "voting: max of 299 passes x 10 votes (official test)"}
_SELECTION_TEXT = {"test": "best epoch on the test split", "val": "best epoch on a held-out val split",
                   "last": "last epoch", "n/a": "no selection"}


@dataclass(frozen=True)
class Protocol:
    """How a figure was produced. ``voting``: one of :data:`VOTINGS`; ``selection``: of
    :data:`SELECTIONS`; ``split``: of :data:`SPLITS` (``train->test``: fit on train, score test)."""

    voting: str
    selection: str
    split: str = "test"

    def label(self) -> str:
        return f"{_VOTING_TEXT[self.voting]}; {_SELECTION_TEXT[self.selection]}; split {self.split}"


OFFICIAL_VOTE = Protocol("vote-max299", "test")
OFFICIAL_SINGLE = Protocol("none", "test")
NO_SELECTION = Protocol("none", "n/a")


@dataclass(frozen=True)
class PaperFigure:
    """One figure of the paper. ``setting``: result fields that must be equal (``npoints``,
    ``way``, ``shot``, ``head`` ...); ``family``: the model family (``recon`` or ``pointmae``)."""

    source: str
    protocol_name: str
    dataset: str
    setting: dict
    value: float
    std: float | None
    protocol: Protocol
    family: str = "recon"
    note: str = ""
    metric: str = "accuracy"

    def setting_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.setting.items()) or "—"


_FULL = {"head": "full"}
PAPER: tuple[PaperFigure, ...] = (
    PaperFigure("Table 1", "finetune", "scan_objbg", {}, 95.18, None, OFFICIAL_SINGLE),
    PaperFigure("Table 1", "finetune", "scan_objbg", {}, 95.35, None, OFFICIAL_VOTE),
    PaperFigure("Table 1", "finetune", "scan_objonly", {}, 93.80, None, OFFICIAL_VOTE),
    PaperFigure("Table 1", "finetune", "scan_hardest", {}, 90.63, None, OFFICIAL_SINGLE),
    PaperFigure("Table 1", "finetune", "scan_hardest", {}, 91.26, None, OFFICIAL_VOTE),
    PaperFigure("Table 1", "finetune", "modelnet40", {"npoints": 1024}, 94.1, None, OFFICIAL_SINGLE),
    PaperFigure("Table 1", "finetune", "modelnet40", {"npoints": 1024}, 94.5, None, OFFICIAL_VOTE),
    PaperFigure("Table 1 / README", "finetune", "modelnet40", {"npoints": 8192}, 94.7, None, OFFICIAL_VOTE,
                note="the README quotes its classification figures with voting"),
    PaperFigure("Table 2", "fewshot", "modelnet40", {"way": 5, "shot": 10, **_FULL}, 97.3, 1.9, OFFICIAL_SINGLE,
                note="mean ± std over 10 folds"),
    PaperFigure("Table 2", "fewshot", "modelnet40", {"way": 5, "shot": 20, **_FULL}, 98.9, 1.2, OFFICIAL_SINGLE,
                note="mean ± std over 10 folds"),
    PaperFigure("Table 2", "fewshot", "modelnet40", {"way": 10, "shot": 10, **_FULL}, 93.3, 3.9, OFFICIAL_SINGLE,
                note="mean ± std over 10 folds"),
    PaperFigure("Table 2", "fewshot", "modelnet40", {"way": 10, "shot": 20, **_FULL}, 95.8, 3.0, OFFICIAL_SINGLE,
                note="mean ± std over 10 folds"),
    PaperFigure("Table 3", "zeroshot", "modelnet10", {}, 75.6, None, NO_SELECTION),
    PaperFigure("Table 3", "zeroshot", "modelnet40", {}, 61.7, None, NO_SELECTION),
    PaperFigure("README", "zeroshot", "modelnet10", {}, 81.6, None, Protocol("none", "n/a", "train+test"),
                note="the README's '*' row"),
    PaperFigure("README", "zeroshot", "modelnet40", {}, 66.8, None, Protocol("none", "n/a", "train+test"),
                note="the README's '*' row"),
    PaperFigure("README", "zeroshot", "scan_objonly", {}, 43.7, None, NO_SELECTION),
    PaperFigure("README", "svm", "modelnet40", {}, 93.4, None, Protocol("none", "n/a", "train->test"),
                note="LinearSVC C=0.075 on frozen features"),
    PaperFigure("paper, part seg.", "partseg", "shapenetpart", {}, 86.4, None, OFFICIAL_SINGLE,
                metric="instance mIoU"),
    PaperFigure("paper, part seg.", "partseg", "shapenetpart", {}, 86.1, None, OFFICIAL_SINGLE, family="pointmae",
                metric="instance mIoU", note="Point-MAE"),
)

# our result protocols under their paper names (`recon test` reports finetuned checkpoints)
_ALIASES = {"test": "finetune"}


@dataclass
class Result:
    """One of our results, normalised. ``protocol`` is None when it cannot be told from the file."""

    protocol_name: str
    dataset: str
    value: float
    std: float | None
    file: str
    setting_text: str
    protocol: Protocol | None
    fields: dict = field(default_factory=dict)
    why_unknown: str = ""

    @property
    def family(self) -> str | None:
        """``recon`` (ReCon-Base), ``pointmae``, or the model's own name (``recon_tiny``,
        ``twotower_base`` ...); None when the result does not name its model."""
        model = str(self.fields.get("base") or self.fields.get("model") or "")
        if not model:
            return None
        model = re.sub(r"_(pretrain|zeroshot)$", "", model)
        return {"recon_base": "recon", "pointmae_base": "pointmae"}.get(model, model)


def _voting_of(rec: dict) -> str | None:
    if rec.get("voting") in VOTINGS:
        return rec["voting"]
    if _ALIASES.get(rec["protocol"], rec["protocol"]) != "finetune":
        return "none"  # few-shot, zero-shot, SVM, part segmentation: single pass
    setting = str(rec.get("setting", ""))
    if rec.get("official_voting") or setting.startswith("official voting"):
        return "vote-max299"
    if re.search(r"-vote pass", setting):
        return "vote-1pass"
    return None


def _selection_of(rec: dict) -> str | None:
    if rec.get("selection") in SELECTIONS:
        return rec["selection"]
    proto = _ALIASES.get(rec["protocol"], rec["protocol"])
    if proto in ("zeroshot", "svm"):
        return "n/a"
    if proto == "fewshot" and any("official selection" in str(n) for n in rec.get("notes") or []):
        return "test"
    return None


def _split_of(rec: dict) -> str:
    if rec.get("split") in SPLITS:
        return rec["split"]
    proto = _ALIASES.get(rec["protocol"], rec["protocol"])
    if proto == "zeroshot" and rec.get("merge_train"):
        return "train+test"
    return "train->test" if proto == "svm" else "test"


def _head_of(rec: dict) -> str | None:
    if rec.get("head"):
        return str(rec["head"])
    setting = str(rec.get("setting", ""))
    if _ALIASES.get(rec["protocol"], rec["protocol"]) != "fewshot":
        return None
    return "linear" if "linear" in setting else "mlp3" if "mlp3" in setting else "full"


def _from_record(rec: dict, file: str) -> Result:
    voting, selection = _voting_of(rec), _selection_of(rec)
    missing = [n for n, v in (("voting", voting), ("selection", selection)) if v is None]
    fields = dict(rec)
    fields["head"] = _head_of(rec)
    if rec.get("single_prompt"):
        missing.append("single-prompt zero-shot (the paper sums 60 prompts)")
    setting = str(rec.get("setting", "")) or "—"
    notes = rec.get("notes") or []
    return Result(_ALIASES.get(rec["protocol"], rec["protocol"]), str(rec["dataset"]), float(rec["value"]),
                  rec.get("std"), file, setting + (f" ({'; '.join(map(str, notes))})" if notes else ""),
                  None if missing else Protocol(voting, selection, _split_of(rec)), fields,
                  "" if not missing else "not recorded: " + ", ".join(missing))


def _finetune_dataset(cfg: dict) -> str:
    data = cfg.get("data") or {}
    name, args = str(data.get("name", "")), data.get("args") or {}
    known = {"ScanObjectNN": f"scan_{args.get('variant', 'hardest')}",
             "ModelNet40": f"modelnet{int(args.get('num_category', 40))}", "SyntheticShapes": "synthetic"}
    return known.get(name, name.lower())


def _from_run(summary: dict, cfg: dict, file: str) -> list[Result]:
    """A finetune run folder: its single-pass and its voted test accuracy."""
    best_on = str((cfg.get("eval") or {}).get("best_on", "val"))
    selection = best_on if (summary.get("best") or {}).get("epoch", -1) >= 0 else "last"
    model = cfg.get("model") or {}
    common = dict(model=model.get("name"), base=model.get("base"), npoints=(cfg.get("train") or {}).get("npoints"))
    vote = summary.get("vote") or {}
    official = (int(vote.get("repeats", 1)), int(vote.get("votes", 0))) == (299, 10)  # else: the first pass
    voted = vote.get("acc_max") if official else summary.get("accuracy_vote")
    out = [Result("finetune", _finetune_dataset(cfg), float(summary["accuracy"]), None, file,
                  f"finetune run, {summary.get('model', '?')}", Protocol("none", selection), common)]
    if voted is not None:
        label = f"finetune run, {summary.get('model', '?')}, {vote.get('votes', '?')} votes x {vote.get('repeats', 1)}"
        out.append(Result("finetune", out[0].dataset, float(voted), None, file, label,
                          Protocol("vote-max299" if official else "vote-1pass", selection), common))
    return out


def collect(runs_dir) -> list[Result]:
    """Every result under ``runs_dir`` (see the module docstring); other JSON files are skipped."""
    import yaml

    root = Path(runs_dir)
    if not root.is_dir():
        raise MissingFileError(f"RUNS_DIR: no directory {str(root)!r}")
    found: list[Result] = []
    for path in sorted(root.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            _log.info(f"skipped {path}: not JSON")
            continue
        rel = str(path.relative_to(root))
        if isinstance(data, dict) and {"protocol", "dataset", "value"} <= set(data):
            found.append(_from_record(data, rel))
        elif isinstance(data, dict) and data.get("task") == "finetune" and "accuracy" in data:
            cfg_path = path.with_name("config.yaml")
            if not cfg_path.is_file():
                _log.info(f"skipped {path}: a finetune summary without its config.yaml")
                continue
            found.extend(_from_run(data, yaml.safe_load(cfg_path.read_text()) or {}, rel))
    return found


def _fits(fig: PaperFigure, r: Result) -> str | None:
    """Why ``r`` cannot stand beside ``fig`` (None: it can)."""
    if (r.protocol_name, r.dataset) != (fig.protocol_name, fig.dataset):
        return "no paper figure for this protocol and dataset"
    for k, v in fig.setting.items():
        if r.fields.get(k) != v:
            return f"setting differs ({k}={r.fields.get(k)!r}, paper {k}={v!r})"
    if r.family is not None and r.family != fig.family:
        return f"model family {r.family} (paper figure: {fig.family})"
    if r.protocol is None:
        return f"protocol unknown ({r.why_unknown})"
    if r.protocol != fig.protocol:
        return f"protocol differs (paper: {fig.protocol.label()})"
    return None


def match(results: list[Result]) -> tuple[list[tuple[PaperFigure, list[Result]]], list[tuple[Result, str]]]:
    """Pair results with paper figures of the same protocol.

    Returns:
        ``[(figure, matching results)]`` in :data:`PAPER` order, and ``[(result, reason)]`` for
        the results no figure matched (the reason of the closest figure: the protocol differs
        before the model family, before the setting, before the dataset).
    """
    pairs = [(fig, [r for r in results if _fits(fig, r) is None]) for fig in PAPER]
    used = {id(r) for _, rs in pairs for r in rs}
    unmatched = []
    for r in results:
        if id(r) in used:
            continue
        reasons = [_fits(fig, r) for fig in PAPER]
        # the closest figure's reason: same setting first, then same family, then same dataset
        for prefix in ("protocol", "model family", "setting", "no paper figure"):
            close = [x for x in reasons if x.startswith(prefix)]
            if close:
                break
        unmatched.append((r, close[0]))
    return pairs, unmatched


def _fmt(value, std=None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def build_report(results: list[Result]) -> str:
    """Markdown: one row per paper figure (ours beside it when a result matches), then ours unmatched."""
    pairs, unmatched = match(results)
    lines = ["| source | task | dataset | setting | protocol | paper | ours | Δ | our file |",
             "|---|---|---|---|---|---|---|---|---|"]
    for fig, mine in pairs:
        source = fig.source + (f" ({fig.note})" if fig.note else "")
        paper = _fmt(fig.value, fig.std) + (f" {fig.metric}" if fig.metric != "accuracy" else "")
        paper += " (Point-MAE)" if fig.family == "pointmae" else " (ReCon)"
        head = (f"| {source} | {fig.protocol_name} | {fig.dataset} | {fig.setting_text()} | "
                f"{fig.protocol.label()} | {paper}")
        if not mine:
            lines.append(f"{head} | — | | |")
        for r in mine:
            lines.append(f"{head} | {_fmt(r.value, r.std)} | {r.value - fig.value:+.2f} | {r.file} |")
    lines += ["", "Our results without a paper figure of the same protocol:", "",
              "| task | dataset | setting | protocol | ours | why unmatched | our file |",
              "|---|---|---|---|---|---|---|"]
    for r, why in unmatched:
        proto = r.protocol.label() if r.protocol else "unknown"
        lines.append(f"| {r.protocol_name} | {r.dataset} | {r.setting_text} | {proto} | {_fmt(r.value, r.std)} | "
                     f"{why} | {r.file} |")
    if not unmatched:
        lines.append("| — | | | | | | |")
    lines += ["", "Paper figures are ReCon-Base's (Point-MAE's where marked) as printed by the paper or the official "
              "README (source column), never re-measured. The official finetune protocol selects the best epoch "
              "on the test split and keeps the best of 8 seeds; its voting figures are the maximum over 299 voting "
              "passes. A result stands beside a figure only under the same protocol; see docs/paper_tables.md."]
    return "\n".join(lines)


def plot_report(results: list[Result], path) -> Path | None:
    """A PNG bar chart, ours vs the paper, of every matched figure; None when nothing matched."""
    pairs = [(fig, r) for fig, rs in match(results)[0] for r in rs]
    if not pairs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{fig.dataset}\n{fig.setting_text() if fig.setting else ''}\n{fig.protocol.voting}" for fig, _ in pairs]
    xs = range(len(pairs))
    fig_, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(pairs)), 3.6))
    ax.bar([x - 0.2 for x in xs], [f.value for f, _ in pairs], 0.4, label="paper")
    ax.bar([x + 0.2 for x in xs], [r.value for _, r in pairs], 0.4, label="ours")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    low = min(min(f.value for f, _ in pairs), min(r.value for _, r in pairs))
    ax.set_ylim(max(0.0, low - 5.0), 100.0)
    ax.set_ylabel("accuracy / mIoU (%)")
    ax.legend(fontsize=8)
    fig_.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig_.savefig(path, dpi=120)
    plt.close(fig_)
    return path


def make_report(runs_dir, out=None, png=None) -> str:
    """Collect ``runs_dir``, return the Markdown; also write it to ``out`` and the chart to ``png``."""
    from recon.atomic import atomic_write_text

    results = collect(runs_dir)
    text = build_report(results)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(str(out), text + "\n")
        _log.info(f"wrote {out} ({len(results)} results)")
    if png:
        written = plot_report(results, png)
        _log.info(f"wrote {written}" if written else f"no chart: no result matches a paper figure ({png} not written)")
    return text

