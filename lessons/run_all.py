"""Run the course: every lesson in order, each in its own process.

    python lessons/run_all.py            # the full course
    python lessons/run_all.py --quick    # tiny sizes, what CI runs
    python lessons/run_all.py --from 4   # lesson 04 and everything after it
    python lessons/run_all.py --only 02  # one lesson, by number or file name
    python lessons/run_all.py --notebooks [--quick]   # every lesson as an executed .ipynb
    python lessons/run_all.py --book [--quick]        # the course as an HTML book

A summary table (lesson, seconds, status) is printed at the end; the exit code is non-zero if
any lesson failed. Quick runs write to outputs/quick/, full runs to outputs/, so a smoke test
never replaces a full run's figures or checkpoints. `--notebooks` and `--book` need the book
extra (pip install -e ".[book]") and write to notebooks/ and book/ in the same folder. Each lesson also runs on its own: one that needs an earlier lesson's artifact
loads it from the output folder, or rebuilds it when it is missing.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

LESSON_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(LESSON_DIR.parent))
from tinygrad_llm.course.map import COURSE  # noqa: E402  (the one list of lessons, in order)


def find_lessons() -> list[Path]:
    """The lesson scripts of the course map, in its order; a script on disk that the map does not
    list, or a listed one that is missing, is an error."""
    listed = [LESSON_DIR / entry.file for entry in COURSE]
    on_disk = set(LESSON_DIR.glob("[0-9][0-9]_*.py"))
    if on_disk != set(listed):
        raise SystemExit(f"run_all: lessons and tinygrad_llm/course/map.py disagree: not in the map "
                         f"{sorted(p.name for p in on_disk - set(listed))}, missing "
                         f"{sorted(p.name for p in set(listed) - on_disk)}")
    return listed


def lesson_number(path: Path) -> int:
    return int(path.name[:2])


def select(lessons: list[Path], start: str | None, only: str | None) -> list[Path]:
    if only is not None:
        if re.fullmatch(r"\d+", only):
            chosen = [p for p in lessons if lesson_number(p) == int(only)]
        else:
            chosen = [p for p in lessons if p.name == only or p.stem == only]
        if not chosen:
            raise SystemExit(f"run_all: no lesson matches --only {only!r}; "
                             f"lessons are: {', '.join(p.name for p in lessons)}")
        return chosen
    if start is not None:
        if not re.fullmatch(r"\d+", start):
            raise SystemExit(f"run_all: --from takes a lesson number, got {start!r}")
        return [p for p in lessons if lesson_number(p) >= int(start)]
    return lessons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for CI)")
    parser.add_argument("--from", dest="start", metavar="N", help="start at lesson N")
    parser.add_argument("--only", metavar="N", help="run only lesson N (number or file name)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--notebooks", action="store_true",
                        help="execute the lessons as notebooks (outputs/[quick/]notebooks/*.ipynb)")
    output.add_argument("--book", action="store_true", help="build the HTML book (outputs/[quick/]book/)")
    args = parser.parse_args(argv)

    lessons = select(find_lessons(), args.start, args.only)
    if args.notebooks or args.book:
        # imported here: running the scripts needs no notebook tools
        from tinygrad_llm.course import book, notebooks

        names = [p.stem for p in lessons]
        if args.book:
            book.build_book(args.quick, names)
        else:
            notebooks.build_notebooks(args.quick, names)
        return 0
    env = dict(os.environ, MPLBACKEND=os.environ.get("MPLBACKEND", "Agg"))
    results = []
    for path in lessons:
        print(f"\n===== {path.name} =====", flush=True)
        command = [sys.executable, str(path)] + (["--quick"] if args.quick else [])
        start = time.perf_counter()
        code = subprocess.call(command, env=env, cwd=LESSON_DIR.parent)
        results.append((path.name, time.perf_counter() - start, "ok" if code == 0 else f"FAILED ({code})"))

    width = max([len(name) for name, _, _ in results] + [6])
    print(f"\n{'lesson':<{width}}  {'seconds':>8}  status")
    for name, seconds, status in results:
        print(f"{name:<{width}}  {seconds:8.1f}  {status}")
    failed = sum(status != "ok" for _, _, status in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
