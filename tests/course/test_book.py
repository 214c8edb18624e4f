"""The book, built in quick mode and read in headless Chromium like a learner reads it.

Every page must load with no console error, no failed request and no request leaving the local
server (maths, highlighting and search all work offline); every internal link must resolve to a
page and, for ``#anchor`` links, to an element of that page; every image must load. A screenshot
of a lesson page is kept under the output folder (``quick/artifacts/``) for CI to archive.

Needs the ``book`` extra (jupytext, nbclient, nbconvert, ipykernel, latex2mathml, playwright) and
a Chromium binary (Debian's ``chromium`` package, or ``TINYGRAD_LLM_CHROMIUM``); skipped without.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

from tinygrad_llm.course.settings import PROJECT_ROOT, output_dir

for tool in ("jupytext", "nbclient", "nbconvert", "ipykernel", "latex2mathml"):
    pytest.importorskip(tool, reason=f'{tool} is part of the book extra: pip install -e ".[book]"')

CHROMIUM = os.environ.get("TINYGRAD_LLM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
LESSON_FOR_SCREENSHOT = "07_pretraining.html"

pytestmark = pytest.mark.book   # part of the default run (CI); `-m "not book"` leaves it out


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """The whole course as a book, quick mode, built by its command in a fresh output tree."""
    root = tmp_path_factory.mktemp("book_outputs")
    env = dict(os.environ, TINYGRAD_LLM_OUT=str(root), PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run([sys.executable, "-m", "tinygrad_llm.course.book", "--quick"], env=env,
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert {p.name for p in root.iterdir()} == {"quick"}, "a quick build wrote outside quick/"
    return root / "quick" / "book"


def test_book_has_every_lesson_in_course_order_and_its_api_reference(book):
    from tinygrad_llm.course.book import PARTS

    lessons = sorted(p.stem for p in (PROJECT_ROOT / "lessons").glob("[0-9][0-9]_*.py"))
    assert sorted(p.stem for p in book.glob("[0-9][0-9]_*.html")) == lessons
    index = (book / "index.html").read_text(encoding="utf-8")
    positions = [index.index(f'href="{stem}.html"') for stem in lessons]
    assert positions == sorted(positions), "the table of contents lists the lessons in course order"
    headings = [index.index(f"<h2>{part}</h2>") for part, _ in PARTS]
    assert headings == sorted(headings), "the parts appear in course order"
    assert (book / "api" / "tinygrad_llm.core.tensor.html").is_file()
    tensor_page = (book / "api" / "tinygrad_llm.core.tensor.html").read_text(encoding="utf-8")
    assert 'id="Tensor"' in tensor_page and 'id="Tensor.backward"' in tensor_page
    first = (book / lessons[0]).with_suffix(".html").read_text(encoding="utf-8")
    assert 'class="highlight' in first and '<span class="kn">import</span>' in first, "code is highlighted"
    assert 'href="api/tinygrad_llm.core.tensor.html#Tensor"' in first, "package names link to the API reference"
    assert list(book.glob("figures/*/*.png")), "the lessons' figures are on the pages"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def served_book(book):
    handler = functools.partial(_QuietHandler, directory=str(book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason='playwright is part of the book extra')
    if CHROMIUM is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set TINYGRAD_LLM_CHROMIUM)")
    with playwright_api.sync_playwright() as playwright:
        # the system's Chromium, never a browser downloaded at run time
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def _ids(page_file: Path) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', page_file.read_text(encoding="utf-8")))


def test_every_page_loads_cleanly_offline_with_its_links_and_images(browser, book, served_book):
    pages = sorted(p.relative_to(book).as_posix() for p in book.rglob("*.html"))
    assert len(pages) > 20
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    ids_of: dict[Path, set[str]] = {}
    images_seen = 0
    # one tab for every page (a new tab per page costs more than the page): `now` names the page
    now = {"name": ""}
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"{now['name']}: console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"{now['name']}: script error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"{now['name']}: failed request {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{now['name']}: {r.status} {r.url}"))
    page.on("request", lambda r: not r.url.startswith((served_book, "data:"))
            and problems.append(f"{now['name']}: request leaves the book: {r.url}"))
    for name in pages:
        now["name"] = name
        page.goto(served_book + name, wait_until="load")
        images = page.evaluate("[...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        problems += [f"{name}: image did not load: {src}" for src, ok in images if not ok]
        images_seen += len(images)
        widths = page.evaluate("[...document.querySelectorAll('math')].map(m => m.getBoundingClientRect().width)")
        problems += [f"{name}: a formula has no width" for width in widths if width <= 0]
        for href in page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)"):
            url, fragment = urldefrag(href)
            if not url.startswith(served_book):
                problems.append(f"{name}: link leaves the book: {href}")
                continue
            target = book / unquote(urlparse(url).path).lstrip("/")
            if not target.is_file():
                problems.append(f"{name}: broken link {href}")
            elif fragment:
                ids = ids_of.setdefault(target, _ids(target))
                if unquote(fragment) not in ids:
                    problems.append(f"{name}: link to a missing anchor {href}")
    assert not problems, "\n".join(problems[:40])
    assert images_seen >= 15, f"the lessons' figures should be on their pages ({images_seen} images)"
    context.close()


def test_search_finds_lessons_and_api_entries(browser, served_book):
    page = browser.new_page()
    page.goto(served_book + "search.html?q=softmax", wait_until="load")
    results = page.eval_on_selector_all("#results a", "links => links.map(a => a.getAttribute('href'))")
    assert any(href.startswith("api/") for href in results), results[:10]
    assert any(re.match(r"\d\d_", href) for href in results), results[:10]
    page.fill("#query", "no such word anywhere qqqzzz")
    assert page.eval_on_selector_all("#results li", "items => items.length") == 0
    page.close()


def test_a_lesson_page_screenshot_is_saved_as_an_artifact(browser, served_book):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(served_book + LESSON_FOR_SCREENSHOT, wait_until="load")
    figure = page.locator(".output_area img, .output_subarea img").first
    figure.scroll_into_view_if_needed()
    path = output_dir("artifacts", quick=True) / "book_lesson_page.png"
    page.screenshot(path=str(path))
    page.close()
    assert path.stat().st_size > 10_000, "the screenshot should show a rendered page"
