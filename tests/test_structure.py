"""The package's shape stays easy to change: imports go one way, files stay short, and what a
modality is lives in ``mmkeras/data/columns`` (docs/CONTRIBUTING.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mmkeras"
MAX_LINES = 300
# Modules outside the column package allowed to ask which modality a column is: the client-side
# `mmkeras predict` (its --text/--image/--audio flags are per modality) and the KerasHub encoder (a
# text, image or audio tower is called differently). Everything else asks the column.
DISPATCH_ALLOWED = {"mmkeras.export.predict", "mmkeras.encoders.keras_hub"}


def _modules() -> dict:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph(modules: dict) -> dict:
    """``{module: modules it imports}``, counting imports inside functions too."""

    def known(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {known(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets |= {known(f"{base}.{alias.name}") or known(base) for alias in node.names}
        graph[module] = {target for target in targets if target and target != module}
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle_through_a_function_local_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_mmkeras():
    assert cycles(import_graph(_modules())) == []


def test_no_module_over_300_lines():
    long = {str(path.relative_to(PACKAGE.parent)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these (at most {MAX_LINES} lines): {long}"


def _dispatches(tree) -> int:
    """Comparisons with ``modality`` and isinstance checks against a *Feature / *Column class."""
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            names = {getattr(side, "attr", getattr(side, "id", None)) for side in sides}
            count += "modality" in names and any(isinstance(side, ast.Constant) for side in sides)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
            classes = ast.unparse(node.args[1])
            count += any(word in classes for word in ("TextFeature", "ImageFeature", "AudioFeature",
                                                      "TextColumn", "ImageColumn", "AudioColumn"))
    return count


def test_modality_dispatch_lives_in_the_column_package():
    outside = {module: n for module, path in _modules().items()
               if not module.startswith("mmkeras.data.columns")
               and (n := _dispatches(ast.parse(path.read_text(encoding="utf-8"))))}
    assert set(outside) <= DISPATCH_ALLOWED, f"ask the column instead: {outside}"
    assert _dispatches(ast.parse('if spec.modality == "text" or isinstance(f, ImageFeature): pass')) == 2
