"""The package layering, computed from the code itself (not from a list kept by hand).

Layers, bottom to top:
  core        toolace_mt.* foundations (schema, envs, llm, io, runs, registry, config helpers)
  packages    toolace_mt.generation, toolace_mt.training, toolace_mt.evaluation
  app         toolace_mt.app (CLI, reproduce, report): the only layer that knows all three packages

Rules: core imports nothing above it, not even inside a function or by a "module:object" string; generation and
training never import evaluation; nothing but the app imports the app; and there is no import cycle anywhere,
counting imports inside functions (a cycle held open by a function-level import is still a cycle).
"""
from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The three packages live at the repository's top level and are mapped into toolace_mt by pyproject's package-dir.
SOURCE_ROOTS = {
    "toolace_mt": ROOT / "toolace_mt",
    "toolace_mt.generation": ROOT / "generation",
    "toolace_mt.training": ROOT / "training",
    "toolace_mt.evaluation": ROOT / "evaluation",
}
PACKAGES = ("toolace_mt.generation", "toolace_mt.training", "toolace_mt.evaluation")
APP = "toolace_mt.app"


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for prefix, base in SOURCE_ROOTS.items():
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([prefix, *parts])] = path
    return out


def _layer(module: str) -> str:
    if module == APP or module.startswith(APP + "."):
        return "app"
    for pkg in PACKAGES:
        if module == pkg or module.startswith(pkg + "."):
            return pkg.rsplit(".", 1)[1]
    return "core"


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest known module that `name` (a module or module.attribute) refers to."""
    while name:
        if name in known:
            return name
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return None


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            # `from M import a`: the submodule M.a where a is one, else M itself (a name defined in M). M is
            # not an edge of its own when every name is a submodule: `from . import x` imports x, not a cycle
            # with the package that holds it.
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            r = _resolve(t, known)
            if r and r != module:
                found.add(r)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (every edge counts, child -> parent included), or None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        return list(e.args[1])
    return None


def test_core_imports_nothing_above_it():
    bad = [f"{m} -> {d}" for m, deps in _graph().items() if _layer(m) == "core"
           for d in deps if _layer(d) != "core"]
    assert not bad, "core imports a layer above it:\n" + "\n".join(sorted(bad))


def test_core_names_no_module_above_it_by_string():
    """A lazy "toolace_mt.generation.x:obj" string in core is an upward import in disguise."""
    pattern = re.compile(r"toolace_mt\.(generation|training|evaluation|app)\b")
    bad = []
    for m, path in _modules().items():
        if _layer(m) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.search(node.value):
                if node.value.lstrip().startswith(("\n", " ")) or len(node.value) > 120:
                    continue  # a docstring that names the layers is not an import
                bad.append(f"{m}: {node.value!r}")
    assert not bad, "core refers to a module above it:\n" + "\n".join(bad)


def test_packages_respect_the_order():
    """generation and training never import evaluation; nothing below the app imports the app."""
    bad = []
    for m, deps in _graph().items():
        lm = _layer(m)
        for d in deps:
            ld = _layer(d)
            if ld == "app" and lm != "app":
                bad.append(f"{m} -> {d}")
            if ld == "evaluation" and lm in ("generation", "training"):
                bad.append(f"{m} -> {d}")
    assert not bad, "import against the layering:\n" + "\n".join(sorted(bad))


def test_no_import_cycles_anywhere():
    # Every edge counts, child -> parent included: a child that imports a name from its package while the
    # package imports the child (even inside a function) is a cycle.
    cycle = _cycle(_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


def test_the_checker_sees_function_level_imports(tmp_path):
    """Guard the guard: an import inside a function body is found like a module-level one."""
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from toolace_mt.generation import plan\n    return plan\n")
    known = {"toolace_mt.generation", "toolace_mt.generation.plan", "toolace_mt.x"}
    assert _imports("toolace_mt.x", p, known) == {"toolace_mt.generation.plan"}


def test_the_checker_keeps_real_edges_and_invents_none(tmp_path):
    """Guard the guard: `from . import x` is an edge to x only (not to the package that holds it); a name taken
    from the parent package is an edge to the parent, and that edge closes a cycle the checker reports."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    init, child = pkg / "__init__.py", pkg / "child.py"
    init.write_text("def load():\n    from . import child\n    return child\n")
    child.write_text("from . import sibling\nfrom toolace_mt.pkg import load\n")
    known = {"toolace_mt.pkg", "toolace_mt.pkg.child", "toolace_mt.pkg.sibling"}
    assert _imports("toolace_mt.pkg", init, known) == {"toolace_mt.pkg.child"}
    assert _imports("toolace_mt.pkg.child", child, known) == {"toolace_mt.pkg.sibling", "toolace_mt.pkg"}
    graph = {m: _imports(m, p, known) for m, p in (("toolace_mt.pkg", init), ("toolace_mt.pkg.child", child))}
    assert set(_cycle(graph) or []) == {"toolace_mt.pkg", "toolace_mt.pkg.child"}


def test_every_package_directory_is_installed():
    """pyproject lists the packages explicitly (three of them live outside toolace_mt/): a new folder such as a
    suite must be listed there too, or a non-editable install would silently lack it."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {m for m, p in _modules().items() if p.name == "__init__.py"}
    missing = sorted(found - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
