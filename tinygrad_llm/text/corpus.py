"""The text the course learns from: documents, their titles and sections (lessons 02-03).

The default corpus ships with every Python: CPython's documentation topics, the help pages that
``help("for")`` prints, stored in ``pydoc_data.topics`` as a dict from a topic key (``"for"``) to
about 465 KB of English prose in total. It needs no download, it is the same on every machine with
the same Python version, and it is real technical writing with headings, grammar rules and code.

Any UTF-8 text works instead:

* a file: documents are separated by the literal ``<|endoftext|>`` (GPT-2's convention); a file
  without it is one document. Whitespace around each separator is dropped, empty pieces skipped;
* a folder: every ``*.txt`` file directly inside it, in sorted name order, read by the file rule
  (so a plain text file is one document).

    >>> docs = load_documents()
    >>> docs[0].name, docs[0].title
    ('assert', 'The "assert" statement')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .patterns import ENDOFTEXT   # "<|endoftext|>", GPT-2's document separator

# reStructuredText headings are a title line underlined by one repeated character of the same
# length; the documentation topics use * for the page title and = - ~ for deeper levels.
_UNDERLINE_CHARACTERS = set("*=-~^\"#+")


@dataclass(frozen=True)
class Section:
    """A heading of a document and the text under it (up to the next heading of any level)."""

    title: str
    level: int   # 1 for the page title, 2 for its sub-headings, ... (the order the styles appear)
    text: str


@dataclass(frozen=True)
class Document:
    """One document of a corpus.

    ``name`` is a stable label: the topic key for the embedded corpus (``"for"``), the file stem
    for a folder, ``stem:index`` for the documents of one file. ``title`` is its first non-empty
    line, which for the documentation topics is the page heading.
    """

    name: str
    text: str

    @property
    def title(self) -> str:
        for line in self.text.splitlines():
            if line.strip():
                return line.strip()
        return ""

    def sections(self) -> list[Section]:
        """Split at reStructuredText headings (a line underlined by ``*``, ``=``, ``-``, ``~``...
        of the same length). Text before the first heading is dropped; a document without
        headings gives an empty list.

            >>> Document("d", "Title\\n=====\\n\\nBody.\\n").sections()
            [Section(title='Title', level=1, text='Body.')]
        """
        lines = self.text.split("\n")
        headings = []   # (line index of the title, title, underline character)
        for i in range(len(lines) - 1):
            title, underline = lines[i].rstrip(), lines[i + 1].rstrip()
            if (title and not title[0].isspace() and len(underline) == len(title) >= 1
                    and underline[0] in _UNDERLINE_CHARACTERS and len(set(underline)) == 1):
                headings.append((i, title, underline[0]))
        styles: list[str] = []   # the first style seen is level 1, the next new one level 2, ...
        sections = []
        for k, (i, title, style) in enumerate(headings):
            if style not in styles:
                styles.append(style)
            end = headings[k + 1][0] if k + 1 < len(headings) else len(lines)
            body = "\n".join(lines[i + 2:end]).strip()
            sections.append(Section(title=title, level=styles.index(style) + 1, text=body))
        return sections


def embedded_documents() -> list[Document]:
    """CPython's documentation topics, one document per topic, in sorted key order."""
    from pydoc_data.topics import topics  # standard library; imported here to keep import cheap

    # careful: dict order follows the Python build; sorting makes the corpus the same everywhere
    # for a given Python version (the topics themselves change a little between versions).
    return [Document(name=key, text=topics[key].strip()) for key in sorted(topics)]


def read_text(path: str | Path) -> str:
    """Read a UTF-8 file strictly; invalid bytes raise ``ValueError`` naming file and byte offset."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 at byte offset {error.start} "
                         f"(byte 0x{data[error.start]:02x}); save the file as UTF-8") from None
    # A byte-order mark is an encoding marker some editors write, not text.
    return text.removeprefix("\ufeff")


def split_documents(text: str, name: str, separator: str = ENDOFTEXT) -> list[Document]:
    """Cut ``text`` at ``separator``; a text without it is one document named ``name``.

        >>> [d.text for d in split_documents("a\\n<|endoftext|>\\nb", "f")]
        ['a', 'b']
    """
    if separator not in text:
        return [Document(name=name, text=text.strip())] if text.strip() else []
    pieces = [piece.strip() for piece in text.split(separator)]
    return [Document(name=f"{name}:{i}", text=piece) for i, piece in enumerate(pieces) if piece]


def load_documents(source: str | Path | None = None) -> list[Document]:
    """The documents of a corpus: ``None`` for the embedded documentation topics, a path to a
    UTF-8 file, or a folder of ``.txt`` files (see the module docstring for the rules)."""
    if source is None:
        documents = embedded_documents()
        where = "the embedded corpus (pydoc_data.topics)"
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"corpus not found: {path}")
        if path.is_dir():
            files = sorted(p for p in path.glob("*.txt") if p.is_file())
            if not files:
                raise ValueError(f"{path}: folder has no .txt files")
            documents = [doc for f in files for doc in split_documents(read_text(f), f.stem)]
        else:
            documents = split_documents(read_text(path), path.stem)
        where = str(path)
    if not documents:
        raise ValueError(f"{where}: the corpus is empty (no text outside separators and whitespace)")
    return documents


def corpus_text(documents: list[Document] | list[str], separator: str = ENDOFTEXT) -> str:
    """Join documents into one string with ``separator`` between them (not after the last).

    The separator tells a model where one text ends and an unrelated one begins; encoded with
    special tokens allowed it becomes a single token id.
    """
    texts = [doc.text if isinstance(doc, Document) else doc for doc in documents]
    for i, text in enumerate(texts):
        # careful: a separator inside a document would silently become a document boundary.
        if separator and separator in text:
            raise ValueError(f"document {i} contains the separator {separator!r}")
    return separator.join(texts)
