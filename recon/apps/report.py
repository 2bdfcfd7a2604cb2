"""``recon report RUNS_DIR``: our results beside the paper's, as one Markdown table (:mod:`recon.eval.report`)."""

from __future__ import annotations

import argparse
import logging

from recon.atomic import atomic_write_text

from ._args import check_out_path

__all__ = ["run"]

NAME = "report"
log = logging.getLogger("recon.apps")


def add_parser(sub):
    from recon.eval import report

    p = sub.add_parser(NAME, help="Markdown table of our results beside the paper's", description=report.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="directory searched recursively for result JSON files")
    p.add_argument("--out", default=None, help="also write the Markdown here")
    p.set_defaults(_run=run)
    return p


def run(runs_dir: str, out: str | None = None) -> str:
    """Print (the command's product) and optionally write the report; returns its text."""
    from recon.eval.report import build_report, collect

    check_out_path(out)
    results = collect(runs_dir)
    text = build_report(results)
    print(text)
    if out:
        atomic_write_text(out, text + "\n")
        log.info(f"wrote {out} ({len(results)} results)")
    return text
