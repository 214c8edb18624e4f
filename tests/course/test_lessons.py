"""Every lesson runs top to bottom in quick mode, so a broken lesson fails CI.

The lessons' own closing asserts make this meaningful: a lesson whose results drift from what
its text claims exits non-zero. Lessons share one output folder in this module, in lesson order,
the way `lessons/run_all.py` runs them, so a later lesson finds an earlier lesson's artifacts; in
quick mode they write only to its `quick/` sub-folder, never where a full run keeps its results.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

LESSON_DIR = Path(__file__).resolve().parents[2] / "lessons"
LESSONS = sorted(LESSON_DIR.glob("[0-9][0-9]_*.py"))


def _load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", LESSON_DIR / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def course_output(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("course_outputs")


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_quick_mode(lesson: Path, course_output: Path):
    env = dict(os.environ, TINYGRAD_LLM_OUT=str(course_output), MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(lesson), "--quick"], env=env, cwd=LESSON_DIR.parent,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{lesson.name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert (course_output / "quick" / "figures").is_dir(), f"{lesson.name} saved no figure"
    strays = sorted(p.name for p in course_output.iterdir() if p.name != "quick")
    assert not strays, f"{lesson.name} in quick mode wrote outside quick/: {strays}"


def test_run_all_selects_lessons_by_number_and_name():
    run_all = _load_run_all()
    lessons = run_all.find_lessons()
    assert [p.name for p in lessons] == [p.name for p in LESSONS]
    first = lessons[0]
    assert run_all.select(lessons, None, str(int(first.name[:2]))) == [first]
    assert run_all.select(lessons, None, first.name) == [first]
    assert run_all.select(lessons, None, first.stem) == [first]
    assert run_all.select(lessons, "1", None) == [p for p in lessons if int(p.name[:2]) >= 1]
    with pytest.raises(SystemExit, match="no lesson matches"):
        run_all.select(lessons, None, "99")


def test_run_all_reports_a_failing_lesson(tmp_path, monkeypatch):
    run_all = _load_run_all()
    broken = tmp_path / "01_broken.py"
    broken.write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(run_all, "find_lessons", lambda: [broken])
    assert run_all.main(["--quick"]) == 1
