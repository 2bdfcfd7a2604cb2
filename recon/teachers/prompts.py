"""The official text prompts of ReCon (docs/official.md §6, §8)."""

from __future__ import annotations

import random
from typing import Optional

__all__ = ["TEMPLATES", "ENDINGS", "NUM_PROMPTS", "prompt", "all_prompts", "random_prompt"]

TEMPLATES = [
    "", "A ", "A model of ", "A model of a ", "A image of ", "A image of a ", "A 3D model of ",
    "A 3D model of a ", "A rendering model of ", "A rendering model of a ", "A point cloud of ",
    "A point cloud of a ", "A point cloud model of ", "A point cloud model of a ",
    "A 3D rendering model of ", "A 3D rendering model of a ", "A rendering image of ",
    "A rendering image of a ", "A 3D rendering image of ", "A 3D rendering image of a ",
]
ENDINGS = [".", " with white background.", " with black context."]
NUM_PROMPTS = len(TEMPLATES) * len(ENDINGS)  # 60


def prompt(text: str, j: int) -> str:
    """Prompt ``j`` in the official zero-shot order: template ``j % 20``, ending ``j // 20``."""
    if not 0 <= j < NUM_PROMPTS:
        raise ValueError(f"prompt index must be in [0, {NUM_PROMPTS}), got {j}")
    return TEMPLATES[j % len(TEMPLATES)] + text + ENDINGS[j // len(TEMPLATES)]


def all_prompts(text: str) -> list:
    """The 60 prompts of ``text`` in the official zero-shot order."""
    return [prompt(text, j) for j in range(NUM_PROMPTS)]


def random_prompt(text: str, rng: Optional[random.Random] = None) -> str:
    """``random.choice(TEMPLATES) + text + random.choice(ENDINGS)``, as pretraining does."""
    rng = rng if rng is not None else random
    return rng.choice(TEMPLATES) + text + rng.choice(ENDINGS)
