"""The course as a static HTML book: every lesson executed, in parts, with an API reference
(lessons 01 onwards).

Unlike ``notebooks`` (which only executes the lessons), this module renders them into a website:

    python -m tinygrad_llm.course.book            # full sizes -> outputs/book/index.html
    python -m tinygrad_llm.course.book --quick    # quick mode -> outputs/quick/book/index.html

The pipeline is nbconvert and a small site of our own, because the course needs little and all
of it must work offline: each lesson is executed (``notebooks.build_notebooks``) and exported
with nbconvert's basic template (code highlighted by Pygments when the page is built, figures
extracted to PNG files beside the page); ``$...$`` and ``$$...$$`` maths is turned into MathML
by latex2mathml while the page is built, which the browser draws itself, so a page loads no
script, font or style from anywhere else. Around the lessons this module writes the table of
contents in course order and in parts (``PARTS``), an API reference rendered from the package's
docstrings, an index of every name and section, and a search page (a little script of our own
over an index written next to it). Mentions of another lesson ("lesson 07") and of a package
name in code (```Trainer```) become links.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import inspect
import json
import pkgutil
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from .map import COURSE, PARTS as BOOK_PARTS, lesson
from .notebooks import build_notebooks, course_command, find_lessons, lesson_number, select_lessons
from .settings import output_dir

BOOK_TITLE = "tinygrad_llm: building an LLM from scratch"
PACKAGE = "tinygrad_llm"

# The parts of the course, in order, and the lessons in each (by number). A part whose lessons do
# not exist yet is listed with none; a lesson missing from this table stops the build.
# the book's parts and the lessons in each, from the course map
PARTS: tuple[tuple[str, tuple[int, ...]], ...] = tuple(
    (part, tuple(entry.number for entry in COURSE if entry.part == part)) for part in BOOK_PARTS)


@dataclasses.dataclass(frozen=True)
class Chapter:
    """One lesson as a page of the book."""
    number: int
    stem: str          # "07_pretraining": the script's name, the notebook's and the page's
    title: str         # from the lesson's first heading, "# 07. Pretraining a GPT on real text"
    part: str

    @property
    def page(self) -> str:
        return f"{self.stem}.html"


def part_of(number: int) -> str:
    """The book part of lesson ``number`` (from the course map)."""
    try:
        return lesson(number).part
    except KeyError:
        raise ValueError(f"lesson {number:02d} is not in the course map (tinygrad_llm/course/map.py)") from None


def lesson_title(notebook) -> str:
    """The text of the first ``# NN. Title`` heading of the lesson's first (markdown) cell."""
    first = notebook.cells[0] if notebook.cells else None
    if first is None or first.cell_type != "markdown":
        raise ValueError("a lesson must open with a markdown cell holding its '# NN. Title' heading")
    for line in first.source.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise ValueError("a lesson's first markdown cell has no '# NN. Title' heading")


# --- Markdown with maths, rendered to MathML while the page is built ---------------------------------

def latex_to_mathml(latex: str, display: bool) -> str:
    """MathML for a LaTeX formula; an unparsable formula is shown as its source, marked as such."""
    from latex2mathml.converter import convert

    try:
        return convert(latex, display="block" if display else "inline")
    except Exception:   # latex2mathml raises many kinds; the page must still build
        return f'<code class="math-error" title="not rendered">{html.escape(latex)}</code>'


def _mathml_renderer_class():
    """nbconvert's Markdown renderer with its maths hooks (which keep ``$...$`` for MathJax,
    a script fetched from the network) drawing MathML instead."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        def block_math(self, body: str) -> str:
            return latex_to_mathml(body, display=True)

        def inline_math(self, body: str) -> str:
            return latex_to_mathml(body, display=False)

        def latex_environment(self, name: str, body: str) -> str:
            return latex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

    return MathMLRenderer


def markdown_to_html(source: str) -> str:
    """Markdown (CommonMark, tables, ``$`` maths) to HTML, the way lesson text is rendered."""
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    return MarkdownWithMath(renderer=_mathml_renderer_class()(escape=False, anchor_link_text="#")).render(source)


def _exporter():
    """An nbconvert HTML exporter: basic template (the page around it is ours), maths as MathML,
    output images extracted to files."""
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    renderer_class = _mathml_renderer_class()

    class BookExporter(HTMLExporter):
        @pass_context   # nbconvert calls this filter with the template's context, as its own
        def markdown2html(self, context, source):
            renderer = renderer_class(escape=False, anchor_link_text="#",
                                      attachments=context.get("cell", {}).get("attachments", {}))
            return MarkdownWithMath(renderer=renderer).render(source)

    exporter = BookExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor("nbconvert.preprocessors.ExtractOutputPreprocessor", enabled=True)
    return exporter


# --- the API reference, from the package's docstrings -------------------------------------------

@dataclasses.dataclass(frozen=True)
class ApiEntry:
    name: str          # "Tensor" or "Tensor.backward"
    module: str        # "tinygrad_llm.core.tensor"
    kind: str          # "class", "function", "method", "property"
    signature: str
    doc: str

    @property
    def url(self) -> str:
        return f"api/{self.module}.html#{self.name}"


def package_modules() -> list:
    """Every module of the package, imported, in a stable order (``__main__`` left out)."""
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE] + sorted(info.name for info in pkgutil.walk_packages(package.__path__, PACKAGE + ".")
                               if not info.name.endswith("__main__"))
    return [importlib.import_module(name) for name in names]


class _Annotation(str):
    """An annotation kept as text (``from __future__ import annotations``), shown without quotes."""
    def __repr__(self) -> str:
        return str(self)


def _signature(obj) -> str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    unquote = lambda a: _Annotation(a) if isinstance(a, str) else a  # noqa: E731
    parameters = [p.replace(annotation=unquote(p.annotation)) for p in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=unquote(signature.return_annotation)))


def module_entries(module) -> list[ApiEntry]:
    """The public functions and classes defined in ``module`` (not re-exported ones), with the
    public methods and properties of each class that carry a docstring."""
    entries = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            entries.append(ApiEntry(name, module.__name__, "class", _signature(obj), inspect.getdoc(obj) or ""))
            for attribute, member in vars(obj).items():
                if attribute.startswith("_") and attribute != "__call__":
                    continue
                function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if not callable(function) or not getattr(function, "__doc__", None):
                    continue
                kind = "property" if isinstance(member, property) else "method"
                entries.append(ApiEntry(f"{name}.{attribute}", module.__name__, kind,
                                        "" if kind == "property" else _signature(function),
                                        inspect.getdoc(function) or ""))
        elif inspect.isfunction(obj):
            entries.append(ApiEntry(name, module.__name__, "function", _signature(obj), inspect.getdoc(obj) or ""))
    return entries


def _docstring_html(doc: str) -> str:
    # docstrings are reStructuredText-ish: ``code`` is also a CommonMark code span, and an
    # indented block is a code block in both, so Markdown renders them faithfully enough
    return markdown_to_html(doc) if doc else ""


# --- pages ---------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}style.css">
<link rel="stylesheet" href="{root}pygments.css">
</head>
<body>
<header class="top">
<a class="brand" href="{root}index.html">{book}</a>
<nav>
<a href="{root}index.html">Contents</a>
<a href="{root}api/index.html">API reference</a>
<a href="{root}genindex.html">Index</a>
<form action="{root}search.html" method="get" role="search"><input type="search" name="q" placeholder="Search the book" aria-label="Search the book"></form>
</nav>
</header>
<div class="layout">
<aside class="sidebar">{sidebar}</aside>
<main>
{content}
</main>
</div>
{scripts}
</body>
</html>
"""

STYLE = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --accent: #0b5cad; --code-bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; }
a { color: var(--accent); }
header.top { display: flex; align-items: center; justify-content: space-between; gap: 1em;
  padding: .6em 1.2em; border-bottom: 1px solid var(--line); background: #fff; position: sticky; top: 0; z-index: 2; }
header.top .brand { font-weight: 600; text-decoration: none; color: var(--ink); }
header.top nav { display: flex; align-items: center; gap: 1em; }
header.top input { padding: .25em .5em; border: 1px solid var(--line); border-radius: 4px; }
.layout { display: flex; align-items: flex-start; }
aside.sidebar { flex: 0 0 17em; padding: 1em 1.2em; border-right: 1px solid var(--line);
  position: sticky; top: 3em; max-height: calc(100vh - 3em); overflow-y: auto; font-size: .92em; }
aside.sidebar h3 { font-size: .8em; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 1.2em 0 .3em; }
aside.sidebar ul { list-style: none; margin: 0; padding: 0; }
aside.sidebar li { margin: .2em 0; }
aside.sidebar li.current a { font-weight: 600; color: var(--ink); }
aside.sidebar .empty { color: var(--muted); font-style: italic; }
main { flex: 1; min-width: 0; max-width: 62em; padding: 1em 2em 3em; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: .9em; }
pre { background: var(--code-bg); padding: .7em .9em; overflow-x: auto; border-radius: 4px; }
.text_cell_render pre { border-left: 3px solid var(--line); }
.code_cell { margin: .8em 0; }
.code_cell .input_area { border: 1px solid var(--line); border-radius: 4px; }
.code_cell .input_area pre { margin: 0; background: var(--code-bg); }
.output_area pre, .output_subarea pre { background: #fff; border-left: 3px solid #a7c7e7; margin: .3em 0; font-size: .85em; }
.output_area img, .output_subarea img { max-width: 100%; height: auto; }
.output_stderr pre { border-left-color: #e0a400; }
a.anchor-link { visibility: hidden; margin-left: .3em; text-decoration: none; }
h1:hover a.anchor-link, h2:hover a.anchor-link, h3:hover a.anchor-link { visibility: visible; }
math[display="block"] { margin: .8em 0; }
.pager { display: flex; justify-content: space-between; margin-top: 3em; padding-top: 1em; border-top: 1px solid var(--line); }
.api-entry { margin: 1.4em 0; padding-top: .6em; border-top: 1px solid var(--line); }
.api-entry h3 { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 1em; margin: 0 0 .4em; }
.api-entry .kind { color: var(--muted); font-weight: normal; }
.part-list p { color: var(--muted); margin: .2em 0 .8em; }
#results li { margin: .6em 0; }
#results .where { color: var(--muted); font-size: .85em; }
"""

SEARCH_SCRIPT = """
// Search the book: every word of the query must appear in an entry's title or text.
(function () {
  var query = new URLSearchParams(window.location.search).get("q") || "";
  var box = document.getElementById("query");
  var list = document.getElementById("results");
  var summary = document.getElementById("summary");
  box.value = query;
  function show(text) {
    var words = text.toLowerCase().split(/\\s+/).filter(Boolean);
    list.innerHTML = "";
    if (!words.length) { summary.textContent = "Type a word to search the lessons and the API."; return; }
    var hits = [];
    window.SEARCH_INDEX.forEach(function (entry) {
      var title = entry.title.toLowerCase(), body = entry.text.toLowerCase();
      if (!words.every(function (w) { return title.indexOf(w) >= 0 || body.indexOf(w) >= 0; })) return;
      var score = words.filter(function (w) { return title.indexOf(w) >= 0; }).length;
      hits.push([score, entry]);
    });
    hits.sort(function (a, b) { return b[0] - a[0]; });
    summary.textContent = hits.length + " result" + (hits.length === 1 ? "" : "s") + " for \\u201c" + text + "\\u201d";
    hits.slice(0, 100).forEach(function (hit) {
      var item = document.createElement("li"), link = document.createElement("a"), where = document.createElement("div");
      link.href = hit[1].url; link.textContent = hit[1].title;
      where.className = "where"; where.textContent = hit[1].where;
      item.appendChild(link); item.appendChild(where); list.appendChild(item);
    });
  }
  box.addEventListener("input", function () { show(box.value); });
  show(query);
})();
"""


def _sidebar(chapters: list[Chapter], root: str, current: str | None) -> str:
    by_part: dict[str, list[Chapter]] = {part: [] for part, _ in PARTS}
    for chapter in chapters:
        by_part[chapter.part].append(chapter)
    blocks = []
    for part, _ in PARTS:
        items = "".join(f'<li{" class=current" if c.stem == current else ""}>'
                        f'<a href="{root}{c.page}">{html.escape(c.title)}</a></li>' for c in by_part[part])
        blocks.append(f"<h3>{html.escape(part)}</h3>" +
                      (f"<ul>{items}</ul>" if items else '<p class="empty">no lessons yet</p>'))
    return "".join(blocks)


def _page(title: str, content: str, chapters: list[Chapter], root: str = "", current: str | None = None,
          scripts: str = "") -> str:
    return PAGE.format(title=html.escape(title), book=html.escape(BOOK_TITLE), root=root, content=content,
                       sidebar=_sidebar(chapters, root, current), scripts=scripts)


def _link_mentions(body: str, chapters: list[Chapter], names: dict[str, str], root: str) -> str:
    """Turn "lesson 07" in prose into a link to that lesson, and a package name in code
    (``Trainer``, ``generate()``) into a link to its API entry."""
    from bs4 import BeautifulSoup, NavigableString

    pages = {c.number: c.page for c in chapters}
    soup = BeautifulSoup(body, "html.parser")
    for code in soup.find_all("code"):
        if code.find_parent(["a", "pre"]) is not None:
            continue
        name = code.get_text().strip().removesuffix("()")
        if name in names:
            code.wrap(soup.new_tag("a", href=root + names[name], **{"class": "api-link"}))
    mention = re.compile(r"\b([Ll]essons? )(\d\d)\b")
    for text in list(soup.find_all(string=mention)):
        if text.find_parent(["a", "code", "pre", "h1", "h2", "h3", "script", "style"]) is not None:
            continue
        pieces, last = [], 0
        for match in mention.finditer(text):
            number = int(match.group(2))
            if number not in pages:
                continue
            pieces.append(NavigableString(text[last:match.start()]))
            link = soup.new_tag("a", href=root + pages[number])
            link.string = match.group(0)
            pieces.append(link)
            last = match.end()
        if pieces:
            pieces.append(NavigableString(text[last:]))
            for piece in pieces:
                text.insert_before(piece)
            text.extract()
    return str(soup)


def _sections(body: str, chapter: Chapter) -> list[dict]:
    """Search entries for a lesson page: one per heading, with the prose (not the code) under it."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(body, "html.parser")
    entries = []
    for cell in soup.select("div.text_cell_render"):
        for element in cell.children:
            if getattr(element, "name", None) in ("h1", "h2", "h3") and element.get("id"):
                heading = element.get_text(" ", strip=True).rstrip("#").strip()
                entries.append({"title": heading, "url": f"{chapter.page}#{element['id']}",
                                "where": chapter.title, "text": ""})
            elif entries and hasattr(element, "get_text"):
                entries[-1]["text"] += " " + element.get_text(" ", strip=True)
    for entry in entries:
        entry["text"] = entry["text"].strip()[:3000]
    return entries


def _api_pages(modules, chapters: list[Chapter], out: Path) -> tuple[dict[str, str], list[dict]]:
    """Write ``api/index.html`` and one page per module; return {name: url} and search entries."""
    api = out / "api"
    api.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    search: list[dict] = []
    listing = []
    for module in modules:
        entries = module_entries(module)
        doc = inspect.getdoc(module) or ""
        summary = doc.split("\n\n")[0].replace("\n", " ")
        listing.append(f'<li><a href="{module.__name__}.html"><code>{module.__name__}</code></a>'
                       f"<br>{html.escape(summary)}</li>")
        names.setdefault(module.__name__, f"api/{module.__name__}.html")
        search.append({"title": module.__name__, "url": f"api/{module.__name__}.html", "where": "module",
                       "text": doc[:3000]})
        blocks = [f"<h1><code>{module.__name__}</code></h1>", _docstring_html(doc)]
        for entry in entries:
            names.setdefault(entry.name, entry.url)
            search.append({"title": entry.name, "url": entry.url, "where": f"{entry.kind} in {module.__name__}",
                           "text": entry.doc[:1500]})
            signature = html.escape(entry.signature)
            blocks.append(f'<div class="api-entry" id="{entry.name}"><h3><span class="kind">{entry.kind}</span> '
                          f"{html.escape(entry.name)}{signature}</h3>{_docstring_html(entry.doc)}</div>")
        (api / f"{module.__name__}.html").write_text(
            _page(f"{module.__name__} · API reference", "\n".join(blocks), chapters, root="../"), encoding="utf-8")
    content = ("<h1>API reference</h1><p>Every module of the package, in the order of the course's areas; "
               "each page renders the module's docstring and those of its public classes and functions.</p>"
               f"<ul class=\"api-modules\">{''.join(listing)}</ul>")
    (api / "index.html").write_text(_page("API reference", content, chapters, root="../"), encoding="utf-8")
    # the names a lesson's code may mention: what the package exports, pointing at where it is defined
    package = importlib.import_module(PACKAGE)
    urls = {entry["url"] for entry in search}
    for name in getattr(package, "__all__", dir(package)):
        obj = getattr(package, name, None)
        if inspect.ismodule(obj) and obj.__name__.startswith(PACKAGE):   # `functional`, say
            names[name] = f"api/{obj.__name__}.html"
            continue
        module = getattr(obj, "__module__", None)
        if module and module.startswith(PACKAGE) and f"api/{module}.html#{name}" in urls:
            names[name] = f"api/{module}.html#{name}"
    return names, search


def _index_page(chapters: list[Chapter], out: Path, quick: bool) -> None:
    by_part: dict[str, list[Chapter]] = {part: [] for part, _ in PARTS}
    for chapter in chapters:
        by_part[chapter.part].append(chapter)
    parts = []
    for part, _ in PARTS:
        items = "".join(f'<li><a href="{c.page}">{html.escape(c.title)}</a></li>' for c in by_part[part])
        parts.append(f"<h2>{html.escape(part)}</h2>" + (f"<ol start=\"{by_part[part][0].number}\">{items}</ol>"
                                                         if items else '<p class="empty">No lessons yet.</p>'))
    mode = ("in quick mode (tiny sizes: the numbers are not the course's results)" if quick
            else "at full size")
    content = (f"<h1>{html.escape(BOOK_TITLE)}</h1>"
               "<p>A NumPy-only autograd engine and a course of numbered lessons that build a GPT: "
               "tokenizer, model, pretraining, decoding, evaluation, fine-tuning and compression. "
               f"Each page is a lesson run top to bottom {mode}, with its printed results and figures. "
               'The <a href="api/index.html">API reference</a> renders the package\'s docstrings; the '
               '<a href="genindex.html">index</a> lists every section and name.</p>'
               f'<div class="part-list">{"".join(parts)}</div>')
    (out / "index.html").write_text(_page(BOOK_TITLE, content, chapters), encoding="utf-8")


def _genindex_page(search: list[dict], chapters: list[Chapter], out: Path) -> None:
    entries = sorted(search, key=lambda e: (e["title"].lower(), e["url"]))
    groups: dict[str, list[str]] = {}
    for entry in entries:
        letter = entry["title"][:1].upper()
        letter = letter if letter.isalpha() else "#"
        groups.setdefault(letter, []).append(f'<li><a href="{entry["url"]}">{html.escape(entry["title"])}</a> '
                                             f'<span class="where">({html.escape(entry["where"])})</span></li>')
    content = "<h1>Index</h1>" + "".join(f"<h2>{letter}</h2><ul>{''.join(items)}</ul>"
                                         for letter, items in sorted(groups.items()))
    (out / "genindex.html").write_text(_page("Index", content, chapters), encoding="utf-8")


def _search_page(search: list[dict], chapters: list[Chapter], out: Path) -> None:
    (out / "search_index.js").write_text("window.SEARCH_INDEX = " + json.dumps(search, ensure_ascii=False) + ";\n",
                                         encoding="utf-8")
    (out / "search.js").write_text(SEARCH_SCRIPT, encoding="utf-8")
    content = ('<h1>Search</h1><input id="query" type="search" placeholder="Search the book" '
               'aria-label="Search the book" autofocus><p id="summary"></p><ul id="results"></ul>')
    scripts = '<script src="search_index.js"></script>\n<script src="search.js"></script>'
    (out / "search.html").write_text(_page("Search", content, chapters, scripts=scripts), encoding="utf-8")


def render_book(notebooks: list[Path], out: Path, quick: bool, log: Callable[[str], None] = print) -> Path:
    """Write the book into ``out`` from executed notebooks (``NN_topic.ipynb``); returns index.html."""
    import nbformat
    from pygments.formatters import HtmlFormatter

    if out.exists():
        shutil.rmtree(out)   # a page of a lesson that no longer exists must not linger
    out.mkdir(parents=True)
    loaded = [(path, nbformat.read(path, as_version=4)) for path in sorted(notebooks)]
    chapters = [Chapter(int(path.name[:2]), path.stem, lesson_title(notebook), part_of(int(path.name[:2])))
                for path, notebook in loaded]
    names, search = _api_pages(package_modules(), chapters, out)
    exporter = _exporter()
    lesson_search = []
    for index, ((path, notebook), chapter) in enumerate(zip(loaded, chapters)):
        body, resources = exporter.from_notebook_node(notebook, resources={"output_files_dir": f"figures/{chapter.stem}"})
        for name, data in resources.get("outputs", {}).items():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        body = _link_mentions(body, chapters, names, root="")
        lesson_search += _sections(body, chapter)
        previous = chapters[index - 1] if index > 0 else None
        following = chapters[index + 1] if index + 1 < len(chapters) else None
        pager = ('<nav class="pager">'
                 + (f'<a rel="prev" href="{previous.page}">&larr; {html.escape(previous.title)}</a>' if previous else "<span></span>")
                 + (f'<a rel="next" href="{following.page}">{html.escape(following.title)} &rarr;</a>' if following else "<span></span>")
                 + "</nav>")
        (out / chapter.page).write_text(_page(chapter.title, body + pager, chapters, current=chapter.stem),
                                        encoding="utf-8")
    search = lesson_search + search
    (out / "style.css").write_text(STYLE, encoding="utf-8")
    (out / "pygments.css").write_text(HtmlFormatter(style="default").get_style_defs(".highlight"), encoding="utf-8")
    _index_page(chapters, out, quick)
    _genindex_page(search, chapters, out)
    _search_page(search, chapters, out)
    log(f"book: {len(chapters)} lessons, {len(search)} index entries -> {out / 'index.html'}")
    return out / "index.html"


def build_book(quick: bool, only: Iterable[str] | None = None, out_dir: Path | None = None,
               log: Callable[[str], None] = print) -> Path:
    """Execute the lessons (``only`` some of them, if given) and render the book; returns index.html.

    The notebooks go to ``output_dir("notebooks")`` and the book to ``output_dir("book")`` of the
    mode (``outputs/`` or ``outputs/quick/``), unless ``out_dir`` names the book's folder.
    """
    lessons = select_lessons(find_lessons(), only)
    for path in lessons:
        part_of(lesson_number(path))   # fail before the long part, not after it
    start = time.perf_counter()
    notebooks = build_notebooks(quick, [p.stem for p in lessons], log=log)
    index = render_book(notebooks, output_dir("book", quick=quick) if out_dir is None else Path(out_dir), quick, log)
    log(f"book built in {time.perf_counter() - start:.0f} s")
    return index


def main(argv: list[str] | None = None) -> int:
    return course_command("Build the course as a static HTML book.", build_book,
                          "the book's folder (default: outputs/book or outputs/quick/book)", argv)


if __name__ == "__main__":
    sys.exit(main())
