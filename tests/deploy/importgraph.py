"""The project's import graph, read from the source with `ast` (nothing is imported).

What counts as an edge from module A to module B:
- every `import B` / `from B import x` in A, at module level *and* inside functions and methods
  (a lazy import still runs whenever that code runs: a circle through it is a circle);
- `from package import name` is an edge to `package.name` when that is a module, else to the
  package (its `__init__`);
- relative imports, resolved against A.

What does not count: imports under `if TYPE_CHECKING:` (they never run), `importlib.import_module`
with a string (a registry's lazy lookup), entry points (`toolkit.commands`,
`toolkit.run_folders`: the runtime finds them in installed metadata; a registration is not an
import), and the implicit import of a module's parent packages.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One import statement's target, as written (resolved when relative)."""

    source: str  # the importing module
    target: str  # the imported module or `module.name`
    path: Path
    line: int


def modules(root: Path, package: str) -> dict[str, Path]:
    """Module name → file, for every `.py` under the package folder `root`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.AST):
    """Every import statement of `tree`, at any depth, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _type_checking(node):
            children = node.orelse
        stack.extend(children)


def imports(name: str, path: Path) -> list[Import]:
    """The imports of module `name` (file `path`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            module = node.module or ""
            if node.level:
                base = name.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            # `module.name`: `graph` keeps the longest part of it that is a module.
            targets = [f"{module}.{alias.name}" for alias in node.names]
        found += [Import(name, t, path, node.lineno) for t in targets]
    return found


def graph(project: dict[str, Path]) -> dict[str, dict[str, Import]]:
    """Module → {imported project module: the first import of it}."""
    edges: dict[str, dict[str, Import]] = {}
    for name, path in project.items():
        out: dict[str, Import] = {}
        for imp in imports(name, path):
            target = imp.target
            while target and target not in project:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.setdefault(target, imp)
        edges[name] = out
    return edges


def find_cycle(edges: dict[str, dict[str, Import]]) -> list[Import]:
    """One import circle (its imports in order, the last leading back to the first module), or
    [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Import] = []

    def visit(module: str) -> list[Import]:
        state[module] = 1
        for target, imp in sorted(edges[module].items()):
            path.append(imp)
            if state.get(target) == 1:
                start = next(i for i, p in enumerate(path) if p.source == target)
                return path[start:]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
            path.pop()
        state[module] = 2
        return []

    for module in sorted(edges):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return []


def describe(cycle: list[Import]) -> str:
    return "import circle: " + " -> ".join(
        f"{imp.source} ({imp.path.name}:{imp.line})" for imp in cycle) + f" -> {cycle[0].source}"
