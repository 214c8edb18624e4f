"""Four multiple-choice benchmarks built from real text, with answers a program can check (lesson 23).

Unlike ``harness``, which scores any task, this module makes tasks, each with a test split and a
separate few-shot split drawn from different source material, and four choices per question (so
guessing scores 25 %):

* ``continuation``: the start of a sentence from the documentation corpus; which of four endings
  is the real one? (The other three end other sentences.) The course model was pretrained on this
  corpus, so this task is *contaminated* for it: it measures memory as much as understanding;
* ``identifier_cloze``: a sentence of the corpus up to a quoted identifier ("AttributeError",
  "__getattr__()"); which identifier comes next?
* ``module_of_function``: which standard-library module defines a function? Read off the modules
  themselves with ``inspect`` (text the course corpus does not hold);
* ``arithmetic``: "3 + 4 =", the sum among three near misses.
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import regex

from ..core.checks import check_positive_int
from ..text.corpus import Document, load_documents
from .harness import Doc, Task

CHOICES = 4
MODULES = ("math", "os", "json", "random", "string", "itertools", "functools", "shutil", "statistics",
           "textwrap", "heapq", "bisect", "base64", "zlib", "fnmatch", "glob")
_SENTENCE_END = regex.compile(r"(?<=[a-z0-9)\"][.!?])\s+(?=[A-Z])")
_QUOTED_IDENTIFIER = regex.compile(r'"([A-Za-z_][A-Za-z0-9_.]*(?:\(\))?)"')


def prose_sentences(documents: list[Document]) -> list[str]:
    """Sentences of running prose: paragraphs that are not code, headings or grammar rules, split
    at a full stop followed by a capital letter, each folded onto one line."""
    sentences = []
    for document in documents:
        for paragraph in document.text.split("\n\n"):
            lines = paragraph.splitlines()
            if not lines or any(line.startswith(("   ", ">>>", "*")) for line in lines):
                continue   # code, examples, lists and grammar are not prose
            text = " ".join(line.strip() for line in lines)
            if set(text) & set("*=~^") or "::=" in text:
                continue
            sentences.extend(s.strip() for s in _SENTENCE_END.split(text) if s.strip())
    return sentences


def _split_material(items: list, rng: np.random.Generator, fewshot_fraction: float = 0.2) -> tuple[list, list]:
    """The items shuffled, the last ``fewshot_fraction`` for demonstrations: no item is in both."""
    order = rng.permutation(len(items))
    cut = int(round(len(items) * (1 - fewshot_fraction)))
    return [items[i] for i in order[:cut]], [items[i] for i in order[cut:]]


def _multiple_choice(context: str, right: str, pool: list[str], rng: np.random.Generator) -> Doc | None:
    """A document with ``right`` and three different wrong choices from ``pool``, in random order."""
    wrong = [w for w in dict.fromkeys(pool[i] for i in rng.permutation(len(pool))) if w != right][:CHOICES - 1]
    if len(wrong) < CHOICES - 1:
        return None
    choices = wrong + [right]
    order = rng.permutation(CHOICES)
    choices = [choices[i] for i in order]
    return Doc(context, tuple(choices), choices.index(right))


def _build(name: str, material: list[tuple[str, str]], count: int, rng: np.random.Generator,
           description: str = "") -> Task:
    """Questions (context, right answer) -> a task of at most ``count`` test documents, with the
    wrong choices of each split taken from the right answers of that split only."""
    test, fewshot = _split_material(material, rng)
    splits = []
    for part, limit in ((test, count), (fewshot, max(8, count // 4))):
        pool = [answer for _, answer in part]
        docs = [d for d in (_multiple_choice(c, a, pool, rng) for c, a in part[:limit]) if d is not None]
        splits.append(tuple(docs))
    return Task(name, "multiple_choice", splits[0], fewshot_docs=splits[1], description=description)


def continuation_task(documents: list[Document] | None = None, count: int = 200, seed: int = 0,
                      words: int = 6) -> Task:
    """The first ``words`` words of a sentence; choose its real next ``words`` words."""
    count = check_positive_int("count", count)
    rng = np.random.default_rng(seed)
    material = []
    for sentence in prose_sentences(load_documents() if documents is None else documents):
        tokens = sentence.split()
        if len(tokens) >= 2 * words:
            material.append((" ".join(tokens[:words]), " ".join(tokens[words:2 * words])))
    material = list(dict.fromkeys(material))   # a sentence repeated in two topics counts once
    return _build("continuation", material, count, rng)


def identifier_cloze_task(documents: list[Document] | None = None, count: int = 200, seed: int = 0,
                          context_words: int = 12) -> Task:
    """A sentence up to a quoted identifier (at most ``context_words`` words before it, the
    opening quote included); choose the identifier."""
    count = check_positive_int("count", count)
    rng = np.random.default_rng(seed)
    material = []
    for sentence in prose_sentences(load_documents() if documents is None else documents):
        for match in _QUOTED_IDENTIFIER.finditer(sentence):
            before = sentence[:match.start()].split()[-context_words:]
            if len(before) >= 3:
                material.append((" ".join(before) + ' "', match.group(1)))
                break   # one question per sentence
    material = list(dict.fromkeys(material))
    task = _build("identifier_cloze", material, count, rng)
    # careful: the context ends with an opening quote, so the choices must follow it directly
    return Task(task.name, task.output_type, task.docs, task.fewshot_docs, target_delimiter="")


def standard_library_functions(modules=MODULES) -> list[tuple[str, str]]:
    """(function name, module) for the public functions each module defines itself, keeping only
    names that exactly one of the modules defines."""
    owners: dict[str, set[str]] = {}
    for name in modules:
        module = importlib.import_module(name)
        # a module's functions may be written in C in a module of another name (os: posix)
        homes = {name, "_" + name} | ({"posix", "nt"} if name == "os" else set())
        for attribute, value in inspect.getmembers(module, callable):
            if attribute.startswith("_") or inspect.isclass(value):
                continue
            if getattr(value, "__module__", None) in homes:
                owners.setdefault(attribute, set()).add(name)
    return sorted((f, next(iter(m))) for f, m in owners.items() if len(m) == 1)


def module_of_function_task(count: int = 200, seed: int = 0, per_module: int = 25) -> Task:
    """Which module defines the function? Four module names to choose from. At most
    ``per_module`` functions of each module are asked about (``os`` alone has ~180)."""
    count = check_positive_int("count", count)
    per_module = check_positive_int("per_module", per_module)
    rng = np.random.default_rng(seed)
    by_module: dict[str, list[str]] = {}
    for function, module in standard_library_functions():
        by_module.setdefault(module, []).append(function)
    material = [(f"The function {function}() is defined in the module", module)
                for module, functions in by_module.items()
                for function in sorted(rng.permutation(functions)[:per_module].tolist())]
    return _build("module_of_function", material, count, rng, description="Python's standard library.")


def arithmetic_task(count: int = 200, seed: int = 0, largest: int = 20) -> Task:
    """a + b = ?, with the sum among three near misses (sum - 1, sum + 1 and a * b, or the next
    distinct one of sum + 2, sum - 2, sum + 10)."""
    count = check_positive_int("count", count)
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a in range(1, largest + 1) for b in range(1, largest + 1)]
    test, fewshot = _split_material(pairs, rng)

    def doc(a: int, b: int) -> Doc:
        right = a + b
        near = [right - 1, right + 1, a * b, right + 2, right - 2, right + 10]
        misses = [n for n in dict.fromkeys(near) if n != right and n >= 0][:CHOICES - 1]
        choices = [str(c) for c in misses + [right]]
        order = rng.permutation(CHOICES)
        choices = [choices[i] for i in order]
        return Doc(f"{a} + {b} =", tuple(choices), choices.index(str(right)))

    return Task("arithmetic", "multiple_choice", tuple(doc(a, b) for a, b in test[:count]),
                fewshot_docs=tuple(doc(a, b) for a, b in fewshot[:max(8, count // 4)]))


TASK_NAMES = ("continuation", "identifier_cloze", "module_of_function", "arithmetic")


def builtin_task(name: str, count: int = 200, seed: int = 0, documents: list[Document] | None = None) -> Task:
    """One of the four tasks by its name (``TASK_NAMES``)."""
    if name not in TASK_NAMES:
        raise ValueError(f"no built-in task {name!r}; the tasks are {', '.join(TASK_NAMES)}")
    if name == "module_of_function":
        return module_of_function_task(count, seed)
    if name == "arithmetic":
        return arithmetic_task(count, seed)
    documents = load_documents() if documents is None else documents
    maker = continuation_task if name == "continuation" else identifier_cloze_task
    return maker(documents, count, seed)


def builtin_tasks(count: int = 200, seed: int = 0, documents: list[Document] | None = None) -> list[Task]:
    """The four tasks, in the order above."""
    documents = load_documents() if documents is None else documents
    return [builtin_task(name, count, seed, documents) for name in TASK_NAMES]
