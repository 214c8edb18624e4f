"""Conventions shared by the lesson scripts (lesson 01 onwards).

A lesson runs as a script (``python lessons/01_autograd.py``) or as a notebook. Two things are
the same for every lesson and live here so that they exist once:

* quick mode, tiny sizes so that the test suite can smoke-run every lesson in seconds. It is on
  when the script gets ``--quick`` or when the environment has ``TINYGRAD_LLM_QUICK=1``;
* the output folder for figures, the course tokenizer and checkpoints: ``outputs/`` at the
  project root, or wherever ``TINYGRAD_LLM_OUT`` points. It is git-ignored.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def quick_mode() -> bool:
    """True when the lesson should run with tiny sizes (``--quick`` or ``TINYGRAD_LLM_QUICK=1``)."""
    return "--quick" in sys.argv[1:] or os.environ.get("TINYGRAD_LLM_QUICK", "") not in ("", "0")


def output_dir(*parts: str) -> Path:
    """The folder for generated artifacts (created if missing); ``parts`` name a sub-folder."""
    root = Path(os.environ.get("TINYGRAD_LLM_OUT", PROJECT_ROOT / "outputs"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, name: str) -> Path:
    """Save a matplotlib figure as ``<output_dir>/figures/<name>.png``, close it, return the path."""
    import matplotlib.pyplot as plt  # plotting is optional for the library, so import it here

    path = output_dir("figures") / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"figure saved: {path.name}")
    return path
