"""``recon configs``: the names of the shipped configs, one per line (what CONFIG accepts)."""

from __future__ import annotations

import os

NAME = "configs"


def add_parser(sub):
    p = sub.add_parser(NAME, help="list the shipped configs")
    p.set_defaults(_run=run)
    return p


def config_names() -> list[str]:
    """Every shipped config as the name ``load_config`` accepts (``finetune/scan_hardest``)."""
    from recon.config import config_dir

    root = config_dir()
    names = []
    for folder, _, files in sorted(os.walk(root)):
        names += [os.path.relpath(os.path.join(folder, f), root)[: -len(".yaml")] for f in sorted(files)
                  if f.endswith(".yaml")]
    return names


def run() -> list[str]:
    """Print the shipped config names (the command's product) and return them."""
    names = config_names()
    for name in names:
        print(name)
    return names
