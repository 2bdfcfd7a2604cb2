"""``recon report RUNS_DIR``: our results beside the paper's, as one Markdown table (:mod:`recon.eval.report`)."""

from __future__ import annotations

import argparse

from ._args import check_out_path

__all__ = ["run"]

NAME = "report"


def add_parser(sub):
    from recon.eval import report

    p = sub.add_parser(NAME, help="Markdown table of our results beside the paper's", description=report.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="directory searched recursively for result JSON files")
    p.add_argument("--out", default=None, help="also write the Markdown here")
    p.add_argument("--png", default=None, help="also draw ours vs the paper (matched figures) as a PNG bar chart")
    p.set_defaults(_run=run)
    return p


def run(runs_dir: str, out: str | None = None, png: str | None = None) -> str:
    """Print (the command's product) and optionally write the report and its chart; returns its text."""
    from recon.eval.report import make_report

    check_out_path(out)
    check_out_path(png, "--png")
    text = make_report(runs_dir, out=out, png=png)
    print(text)
    return text
