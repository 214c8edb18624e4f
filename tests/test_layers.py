"""The package's areas import only downwards, its modules form no cycle, and no module reaches
into another's private names.

Every import is read with ``ast``, including the ones inside functions (an import hidden in a
method body is still a dependency, it only runs later). The order of the areas follows the course:

    core < text < model < train = evaluate = scale < finetune = distributed < compress = sparsity
    < align < course < cli

Areas on one level (train, evaluate, scale; finetune, distributed; compress, sparsity) are
siblings and may not import each other. An area holds one stage of the course: when it grows past
ten modules, an idea is split out into a sibling area.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "tinygrad_llm"
PACKAGE = PACKAGE_DIR.name

AREA_LEVEL = {"core": 0, "text": 1, "model": 2, "train": 3, "evaluate": 3, "scale": 3, "finetune": 4,
              "distributed": 4, "compress": 5, "sparsity": 5, "align": 6, "course": 7, "cli": 8}
TOP_LEVEL = max(AREA_LEVEL.values()) + 1   # tinygrad_llm/__init__.py and __main__.py sit above all


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def area(module: str) -> str | None:
    """``tinygrad_llm.text.bpe`` -> ``text``; the top-level package and ``__main__`` have none."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in AREA_LEVEL else None


def level(module: str) -> int:
    name = area(module)
    return TOP_LEVEL if name is None else AREA_LEVEL[name]


def imports_of(module: str, source: str | None = None) -> list[tuple[str, list[str], int]]:
    """(imported module, the names taken from it, line) for every import of ``module`` (its file,
    or ``source`` read as that module) that lands inside the package; ``from .x import y`` names
    module ``x.y`` when ``y`` is a module."""
    path = MODULES.get(module, PACKAGE_DIR / "/".join(module.split(".")[1:]) / "fake.py")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    source = path.read_text(encoding="utf-8") if source is None else source
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            names = [alias.name for alias in node.names]
            submodules = [f"{target}.{name}" for name in names if f"{target}.{name}" in MODULES]
            if submodules:
                found += [(sub, [], node.lineno) for sub in submodules]
            others = [name for name in names if f"{target}.{name}" not in MODULES]
            if others or not submodules:
                found.append((target, others, node.lineno))
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_area_is_known():
    unknown = {module.split(".")[1] for module in MODULES
               if module.count(".") >= 1 and area(module) is None and module != f"{PACKAGE}.__main__"}
    assert not unknown, f"areas without a place in the import order: {sorted(unknown)}"


MAX_AREA_MODULES = 10


def test_no_area_grows_past_ten_modules():
    sizes = {name: sum(1 for module in MODULES if area(module) == name and module != f"{PACKAGE}.{name}")
             for name in AREA_LEVEL}
    crowded = {name: size for name, size in sizes.items() if size > MAX_AREA_MODULES}
    assert not crowded, f"areas past {MAX_AREA_MODULES} modules (split an idea out): {crowded}"


def upward_imports(graph: dict) -> list[str]:
    """Every import of a module from an area not below its own, naming both modules."""
    wrong = []
    for module, imports in graph.items():
        for target, _, line in imports:
            if target not in MODULES:
                wrong.append(f"{module} line {line} imports {target}, which is not a module of the package")
            elif area(target) != area(module) and level(target) >= level(module):
                wrong.append(f"{module} (line {line}, area {area(module)}) imports {target} "
                             f"(area {area(target)}), which is not below it")
    return wrong


def import_cycles(graph: dict) -> list[str]:
    """Cycles between modules, each spelled ``a -> b -> a``."""
    # depth-first search; a back edge to a module still on the stack closes a cycle
    state: dict[str, int] = {}   # 1: on the stack, 2: finished
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target, _, _ in graph.get(module, ()):
            if target not in graph or target == module:
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


def test_imports_go_down_the_course_order():
    wrong = upward_imports(GRAPH)
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    cycles = import_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_private_name_is_imported_from_another_module():
    wrong = [f"{module} line {line} imports {name} from {target}"
             for module, imports in GRAPH.items() for target, names, line in imports
             for name in names if name.startswith("_") and target != module]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("source, expected", [
    ("from .bpe import BPETokenizer", "tinygrad_llm.text.bpe"),
    ("from ..core import functional as F", "tinygrad_llm.core.functional"),
    ("def f():\n    from ..model.nn import Module", "tinygrad_llm.model.nn"),
])
def test_the_walker_sees_relative_and_function_level_imports(source, expected):
    # the checks above are only as good as this reader: the source read as a module text/fake.py
    assert expected in [target for target, _, _ in imports_of(f"{PACKAGE}.text.fake", source)]


def test_the_checks_report_an_upward_import_a_sibling_import_and_a_cycle():
    # a made-up graph over real module names: core importing model, train importing evaluate
    # (siblings on one level), and bpe <-> formats importing each other
    fake = {f"{PACKAGE}.core.tensor": [(f"{PACKAGE}.model.gpt", [], 3)],
            f"{PACKAGE}.train.trainer": [(f"{PACKAGE}.evaluate.perplexity", [], 5)],
            f"{PACKAGE}.text.bpe": [(f"{PACKAGE}.text.formats", [], 7)],
            f"{PACKAGE}.text.formats": [(f"{PACKAGE}.text.bpe", [], 9)],
            f"{PACKAGE}.model.gpt": [(f"{PACKAGE}.core.tensor", [], 1)]}
    wrong = upward_imports(fake)
    assert len(wrong) == 2
    assert "tinygrad_llm.core.tensor (line 3, area core) imports tinygrad_llm.model.gpt" in wrong[0]
    assert "tinygrad_llm.train.trainer" in wrong[1] and "tinygrad_llm.evaluate.perplexity" in wrong[1]
    assert import_cycles(fake) == ["tinygrad_llm.core.tensor -> tinygrad_llm.model.gpt -> tinygrad_llm.core.tensor",
                                   "tinygrad_llm.text.bpe -> tinygrad_llm.text.formats -> tinygrad_llm.text.bpe"]
