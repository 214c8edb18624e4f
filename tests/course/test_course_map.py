"""The course map is the one record of which lesson introduces which module: the modules' own
headers, ``lessons/run_all.py`` and the README's lesson table must agree with it."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from tinygrad_llm.course.map import COURSE, NEIGHBOURS, PARTS, UPCOMING, lesson, lesson_of

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "tinygrad_llm"
MODULES = {".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts): path
           for path in sorted(PACKAGE_DIR.rglob("*.py")) if path.name != "__init__.py"}
LESSON_NAMED = re.compile(r"\blessons? (\d\d)\b", re.IGNORECASE)


def docstring(module: str) -> str:
    return ast.get_docstring(ast.parse(MODULES[module].read_text(encoding="utf-8"))) or ""


def test_every_module_is_introduced_by_exactly_one_lesson():
    listed = [name for entry in COURSE for name in entry.modules] + list(UPCOMING)
    assert sorted(set(listed)) == sorted(listed), "a module is listed by two lessons (or also as upcoming)"
    assert sorted(listed) == sorted(MODULES), (f"not in the map: {sorted(set(MODULES) - set(listed))}; "
                                               f"in the map but not in the package: {sorted(set(listed) - set(MODULES))}")


@pytest.mark.parametrize("module", sorted(set(MODULES) - set(UPCOMING)))
def test_module_header_names_the_lesson_that_introduces_it(module):
    header = docstring(module).split("\n\n")[0]
    named = LESSON_NAMED.findall(header)
    assert named, f"{module}: the docstring's first paragraph names no lesson: {header[:80]!r}"
    assert int(named[0]) == lesson_of(module).number, (
        f"{module}: its header names lesson {named[0]}, the course map says lesson {lesson_of(module).number:02d}")


@pytest.mark.parametrize("module, neighbour", sorted(NEIGHBOURS.items()))
def test_module_header_says_what_it_adds_over_its_neighbour(module, neighbour):
    assert module in MODULES and neighbour in MODULES
    short = neighbour.rsplit(".", 1)[1]
    assert f"``{short}``" in docstring(module), f"{module}: its docstring does not name its neighbour ``{short}``"
    # a neighbour comes no later in the course than the module that builds on it
    assert lesson_of(neighbour).number <= lesson_of(module).number


def test_lessons_on_disk_and_run_all_follow_the_map():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "lessons" / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    files = [entry.file for entry in COURSE]
    assert [path.name for path in run_all.find_lessons()] == files
    assert sorted(path.name for path in (ROOT / "lessons").glob("[0-9][0-9]_*.py")) == files
    assert [entry.number for entry in COURSE] == list(range(1, len(COURSE) + 1)), "lessons are numbered 1, 2, ..."
    assert all(entry.file.startswith(f"{entry.number:02d}_") for entry in COURSE)


def test_readme_lesson_table_is_the_map():
    rows = re.findall(r"^\| `(\d\d_\w+\.py)` \| (.+?) \|$", (ROOT / "README.md").read_text(encoding="utf-8"), re.M)
    assert rows == [(entry.file, entry.title) for entry in COURSE]


def test_lookups_name_what_is_missing():
    assert lesson(7).file == "07_pretraining.py" and lesson_of("tinygrad_llm.model.gpt").number == 5
    with pytest.raises(KeyError, match="no lesson 99"):
        lesson(99)
    with pytest.raises(KeyError, match="no lesson introduces 'text.nothing'"):
        lesson_of("text.nothing")


@pytest.mark.parametrize("module", sorted(UPCOMING))
def test_a_module_ahead_of_its_lesson_names_the_lessons_it_belongs_to(module):
    header = " ".join(docstring(module).split("\n\n")[0].split())
    assert UPCOMING[module] in header, f"{module}: its header does not say it belongs to {UPCOMING[module]!r}"


def test_every_lesson_is_in_one_of_the_books_parts():
    assert all(entry.part in PARTS for entry in COURSE)
    order = [PARTS.index(entry.part) for entry in COURSE]
    assert order == sorted(order), "the parts follow the course order"
