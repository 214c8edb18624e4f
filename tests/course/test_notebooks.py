"""The lessons read as notebooks: their cell structure, the output folders of quick and full runs,
inline figures, and the command that executes lessons into ``.ipynb`` files.

The structure is checked on the percent-format source itself (no tools needed) and, when jupytext
is installed, on the notebook it reads; executing a lesson needs the ``book`` extra.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_llm.course import settings
from tinygrad_llm.course.book import PARTS, markdown_to_html, part_of
from tinygrad_llm.course.notebooks import select_lessons

LESSON_DIR = Path(__file__).resolve().parents[2] / "lessons"
LESSONS = sorted(LESSON_DIR.glob("[0-9][0-9]_*.py"))


def _cells(source: str) -> list[tuple[str, str]]:
    """(marker line, body) for every ``# %%`` cell of a percent-format script."""
    pieces = re.split(r"^(# %%.*)$", source, flags=re.M)
    return [(pieces[i], pieces[i + 1]) for i in range(1, len(pieces), 2)]


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_opens_with_its_title_and_heads_every_section(lesson: Path):
    source = lesson.read_text(encoding="utf-8")
    number = lesson.name[:2]
    cells = _cells(source)
    assert source.startswith('# %% [markdown]\n"""\n'), "the opening markdown cell is the module docstring"
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring.lstrip("\n").startswith(f"# {number}. "), f"the title heading is '# {number}. Title'"
    for line in ("Builds on:", "Adds:", "Run:"):
        assert line in docstring, f"the opening cell keeps its '{line}' line"
    titled = [marker for marker, _ in cells if marker not in ("# %%", "# %% [markdown]")]
    assert not titled, f"a titled code cell hides its text in cell metadata: {titled}"
    code = [i for i, (marker, _) in enumerate(cells) if marker == "# %%"]
    # the closing checks have their heading, and the code cell under it asserts (exercises may follow)
    closing = [i for i, (marker, body) in enumerate(cells)
               if marker == "# %% [markdown]" and "# ## Closing checks" in body]
    assert closing, "the closing checks have a '## Closing checks' heading"
    assert cells[closing[0] + 1][0] == "# %%" and "assert" in cells[closing[0] + 1][1]
    settings_heading = [i for i, (_, body) in enumerate(cells) if "# ## Settings" in body]
    assert settings_heading and settings_heading[0] < code[1], "the settings have a heading"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_jupytext_reads_markdown_cells_where_the_text_is(lesson: Path):
    jupytext = pytest.importorskip("jupytext", reason='jupytext is part of the book extra: pip install -e ".[book]"')
    notebook = jupytext.read(lesson)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {lesson.name[:2]}. ")
    assert not any(cell.metadata.get("title") for cell in notebook.cells)
    headings = [cell.source.splitlines()[0] for cell in notebook.cells
                if cell.cell_type == "markdown" and cell.source.startswith("#")]
    assert len(headings) >= 4 and "## Closing checks" in headings


def test_every_lesson_has_one_part_and_the_parts_are_the_course_order():
    assert [part for part, _ in PARTS] == ["Foundations", "Pretraining", "Decoding and evaluation", "Fine-tuning",
                                          "Compression and deployment", "Scale", "Model families",
                                          "Benchmarks and adaptation", "Alignment"]
    numbers = [n for _, lessons in PARTS for n in lessons]
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers))
    assert [part_of(int(p.name[:2])) for p in LESSONS]   # every lesson is in the table
    with pytest.raises(ValueError, match="lesson 99 is not in the course map"):
        part_of(99)


def test_quick_runs_write_to_their_own_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_LLM_OUT", str(tmp_path))
    monkeypatch.setenv("TINYGRAD_LLM_QUICK", "0")
    assert settings.output_dir("figures") == tmp_path / "figures"
    monkeypatch.setenv("TINYGRAD_LLM_QUICK", "1")
    assert settings.output_dir("figures") == tmp_path / "quick" / "figures"
    assert settings.output_dir("book", quick=False) == tmp_path / "book"
    assert (tmp_path / "quick" / "figures").is_dir() and (tmp_path / "figures").is_dir()


def test_save_figure_in_a_script_saves_closes_and_shows_nothing(tmp_path):
    # a fresh interpreter: no IPython kernel, and save_figure must not import IPython to find out
    code = ("import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt\n"
            "from tinygrad_llm.course import save_figure, running_in_notebook\n"
            "fig, ax = plt.subplots(); ax.plot([0, 1])\n"
            "path = save_figure(fig, 'line')\n"
            "assert path.is_file() and not plt.get_fignums() and not running_in_notebook()\n"
            "assert 'IPython' not in sys.modules, 'a script has no reason to import IPython'\n"
            "print(path)\n")
    env = {"TINYGRAD_LLM_OUT": str(tmp_path), "PYTHONPATH": str(settings.PROJECT_ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["figure saved: line.png", str(tmp_path / "figures" / "line.png")]


def test_markdown_maths_becomes_mathml_and_code_is_left_alone():
    rendered = markdown_to_html("The loss $L = -\\log p$ and\n\n$$\\sqrt{d_k}$$\n\nbut `$x$` stays code.")
    assert rendered.count("<math") == 2 and 'display="block"' in rendered
    assert "<msqrt>" in rendered and "<code>$x$</code>" in rendered


def test_lessons_are_selected_by_number_or_name():
    assert select_lessons(LESSONS, ["1", LESSONS[2].stem]) == [LESSONS[0], LESSONS[2]]
    with pytest.raises(SystemExit, match="no lesson matches '99'"):
        select_lessons(LESSONS, ["99"])


def test_a_lesson_executes_into_a_notebook_with_its_figure_inline(tmp_path, monkeypatch):
    for tool in ("jupytext", "nbclient", "ipykernel", "nbformat"):
        pytest.importorskip(tool, reason=f'{tool} is part of the book extra: pip install -e ".[book]"')
    import nbformat

    from tinygrad_llm.course.notebooks import build_notebooks

    monkeypatch.setenv("TINYGRAD_LLM_OUT", str(tmp_path))
    lines = []
    [path] = build_notebooks(quick=True, only=["01"], log=lines.append)
    assert path == tmp_path / "quick" / "notebooks" / "01_autograd.ipynb" and "01_autograd.py" in lines[0]
    notebook = nbformat.read(path, as_version=4)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == len(list((tmp_path / "quick" / "figures").glob("01_*.png"))) >= 1
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "figure saved: 01_spirals.png" in printed and "checks passed" in printed
    assert not [o for o in outputs if o.output_type == "execute_result"], "cells echo no values: a lesson prints"
    assert not (tmp_path / "figures").exists(), "a quick run leaves the full run's folder alone"
