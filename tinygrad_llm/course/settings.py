"""Conventions shared by the lesson scripts (lesson 01 onwards).

A lesson runs as a script (``python lessons/01_autograd.py``) or as a notebook. Three things are
the same for every lesson and live here so that they exist once:

* quick mode, tiny sizes so that the test suite can smoke-run every lesson in seconds. It is on
  when the script gets ``--quick`` or when the environment has ``TINYGRAD_LLM_QUICK=1``;
* the output folder for figures, the course tokenizer and checkpoints: ``outputs/`` at the
  project root, or wherever ``TINYGRAD_LLM_OUT`` points, for a full run, and its sub-folder
  ``quick/`` for a quick run, so that a smoke test never overwrites a full run's results. It is
  git-ignored;
* figures: saved as PNG files there and, when the lesson runs as a notebook (an IPython kernel),
  also shown inline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUICK_FOLDER = "quick"   # the sub-folder of the output root that quick runs write to


def quick_mode() -> bool:
    """True when the lesson should run with tiny sizes (``--quick`` or ``TINYGRAD_LLM_QUICK=1``)."""
    return "--quick" in sys.argv[1:] or os.environ.get("TINYGRAD_LLM_QUICK", "") not in ("", "0")


def output_root(quick: bool | None = None) -> Path:
    """Where a run's artifacts go: ``$TINYGRAD_LLM_OUT`` or ``outputs/``, plus ``quick/`` in quick mode.

    ``quick=None`` follows :func:`quick_mode`; the folder is not created here.
    """
    root = Path(os.environ.get("TINYGRAD_LLM_OUT", PROJECT_ROOT / "outputs"))
    return root / QUICK_FOLDER if (quick_mode() if quick is None else quick) else root


def output_dir(*parts: str, quick: bool | None = None) -> Path:
    """The folder for generated artifacts (created if missing); ``parts`` name a sub-folder.

    Quick runs get their own tree (see :func:`output_root`), so ``output_dir("figures")`` is
    ``outputs/figures`` in a full run and ``outputs/quick/figures`` in a quick one.
    """
    path = output_root(quick).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def running_in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel attached), False in a plain script."""
    ipython = sys.modules.get("IPython")   # never import IPython just to ask: scripts do not need it
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def save_figure(fig, name: str) -> Path:
    """Save a matplotlib figure as ``<output_dir>/figures/<name>.png``, close it, return the path.

    In a notebook the saved file is also displayed inline, so the picture a reader sees is the
    file on disk; closing the figure keeps matplotlib from drawing it a second time.
    """
    import matplotlib.pyplot as plt  # plotting is optional for the library, so import it here

    path = output_dir("figures") / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    if running_in_notebook():
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    print(f"figure saved: {path.name}")
    return path
