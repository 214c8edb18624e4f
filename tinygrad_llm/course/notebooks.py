"""The lessons as executed Jupyter notebooks (lessons 01 onwards; the book is built from them).

A lesson is a percent-format script (``lessons/NN_topic.py``): ``# %% [markdown]`` cells hold the
text and ``# %%`` cells the code. jupytext reads it as a notebook and nbclient runs that notebook
in a fresh IPython kernel, cell by cell, in the project folder, keeping every printed line and
every figure (``save_figure`` displays it inline under a kernel). One command does all lessons:

    python -m tinygrad_llm.course.notebooks            # full sizes -> outputs/notebooks/
    python -m tinygrad_llm.course.notebooks --quick    # quick mode -> outputs/quick/notebooks/
    python -m tinygrad_llm.course.notebooks --only 01 03

Lessons run in course order in one output tree, as ``lessons/run_all.py`` runs them, so a later
lesson finds the earlier lessons' artifacts. The tools are an optional extra:
``pip install -e ".[book]"`` (jupytext, nbclient, ipykernel).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from .settings import PROJECT_ROOT, output_dir

LESSON_DIR = PROJECT_ROOT / "lessons"
LESSON_PATTERN = "[0-9][0-9]_*.py"   # NN_topic.py; the number gives the course order
CELL_TIMEOUT = {True: 600, False: 3600}   # seconds one cell may take, quick and full


def find_lessons(lesson_dir: Path = LESSON_DIR) -> list[Path]:
    """The lesson scripts in course order."""
    return sorted(lesson_dir.glob(LESSON_PATTERN))


def lesson_number(path: Path) -> int:
    return int(path.name[:2])


def select_lessons(lessons: list[Path], only: Iterable[str] | None) -> list[Path]:
    """The lessons named by number (``7``, ``07``) or file name (``07_pretraining[.py]``)."""
    if not only:
        return lessons
    chosen = []
    for name in only:
        match = [p for p in lessons if (name.isdigit() and lesson_number(p) == int(name))
                 or name in (p.name, p.stem)]
        if not match:
            raise SystemExit(f"notebooks: no lesson matches {name!r}; "
                             f"lessons are: {', '.join(p.name for p in lessons)}")
        chosen += [p for p in match if p not in chosen]
    return sorted(chosen)


def _require(module: str):
    """Import an optional tool, or stop with the command that installs it."""
    try:
        return __import__(module)
    except ImportError:
        raise SystemExit(f"{module} is not installed; the notebook tools are an optional extra: "
                         f'pip install -e ".[book]"') from None


def read_lesson(path: Path):
    """The lesson as an (unexecuted) ``nbformat`` notebook, through jupytext."""
    jupytext = _require("jupytext")
    notebook = jupytext.read(path)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def kernel_environment(quick: bool) -> dict[str, str]:
    """The kernel's environment: quick mode said explicitly, this copy of the package importable,
    and matplotlib left to the kernel's inline backend (a script's ``MPLBACKEND=Agg`` removed)."""
    env = dict(os.environ, TINYGRAD_LLM_QUICK="1" if quick else "0")
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("MPLBACKEND", None)
    return env


def execute(notebook, quick: bool, timeout: int | None = None):
    """Run every cell of ``notebook`` in a new kernel (in the project folder); returns it, executed.

    A cell that raises stops the run with nbclient's ``CellExecutionError``, which shows the cell
    and its traceback: a lesson whose closing checks fail has no executed notebook.
    """
    _require("nbclient")
    _require("ipykernel")
    from nbclient import NotebookClient

    # A lesson is a script: what it shows is what it prints, so the value of a cell's last line
    # (the path that save_figure returns, say) is not echoed as it would be in a live session.
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT[quick] if timeout is None else timeout,
                            kernel_name="python3", resources={"metadata": {"path": str(PROJECT_ROOT)}},
                            extra_arguments=["--InteractiveShell.ast_node_interactivity=none"])
    client.execute(env=kernel_environment(quick))
    return notebook


def build_notebooks(quick: bool, only: Iterable[str] | None = None, out_dir: Path | None = None,
                    log: Callable[[str], None] = print) -> list[Path]:
    """Execute the chosen lessons in course order and write ``<out_dir>/NN_topic.ipynb`` for each.

    ``out_dir`` defaults to ``output_dir("notebooks")`` of the mode, so quick notebooks never
    replace full ones. Returns the paths written.
    """
    import nbformat

    lessons = select_lessons(find_lessons(), only)
    folder = output_dir("notebooks", quick=quick) if out_dir is None else Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in lessons:
        start = time.perf_counter()
        notebook = execute(read_lesson(path), quick)
        target = folder / f"{path.stem}.ipynb"
        nbformat.write(notebook, target)
        written.append(target)
        log(f"{path.name}: executed in {time.perf_counter() - start:.1f} s -> {target}")
    return written


def course_command(description: str, build: Callable[..., object], out_help: str,
                   argv: list[str] | None = None) -> int:
    """The command line shared by the notebook and book builders: --quick, --only N..., --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (what CI runs)")
    parser.add_argument("--only", nargs="+", metavar="N", help="only these lessons (numbers or file names)")
    parser.add_argument("--out", type=Path, help=out_help)
    args = parser.parse_args(argv)
    build(args.quick, args.only, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    return course_command("Execute the lessons as Jupyter notebooks.", build_notebooks,
                          "folder for the .ipynb files (default: outputs/notebooks or outputs/quick/notebooks)",
                          argv)


if __name__ == "__main__":
    sys.exit(main())
