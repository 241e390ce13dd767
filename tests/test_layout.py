"""The package's layers, read from its imports (``ast``; imports inside functions count).

The tree reads as the pipeline: config and the shared foundations at the
bottom, then ingest and vectors, the store, quality and align, training,
and the facade and command line on top. A layer never reaches up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGE = ROOT / "incremental_w2v"
LAYERS = ("config", "ingest", "train", "store", "quality", "vectors", "align", "cli")
COMMANDS = ("incremental_w2v.cli", "incremental_w2v.lineage", "incremental_w2v.align.commands",
            "incremental_w2v.train.add_corpus", "incremental_w2v.train.rebuild",
            "incremental_w2v.store.ops", "incremental_w2v.quality.compare",
            "incremental_w2v.quality.report")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every package module ``path`` imports, at the top or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "incremental_w2v" or m.startswith("incremental_w2v.")}


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def in_layer(module: str, layer: str) -> bool:
    return module.startswith(f"incremental_w2v.{layer}.") or module == f"incremental_w2v.{layer}"


def reaches(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{mod} imports {target}"
        for mod, targets in MODULES.items() if in_layer(mod, layer)
        for target in targets
        if any(in_layer(target, f) for f in forbidden)
    )


def test_every_layer_is_a_subpackage() -> None:
    for layer in LAYERS:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "errors.py", "fsutil.py", "lineage.py",
                    "progress.py", "uris.py"]


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("ingest", ("train", "store", "quality", "align", "cli")),
    ("store", ("train", "quality", "align", "cli")),
    ("quality", ("train", "align", "cli")),
    ("align", ("train", "cli")),
    ("vectors", ("train", "store", "quality", "align", "cli", "ingest")),
    ("config", ("train", "store", "quality", "align", "cli", "vectors")),
])
def test_a_layer_never_reaches_up(layer: str, forbidden: tuple[str, ...]) -> None:
    assert reaches(layer, forbidden) == []


def test_vectors_imports_no_command() -> None:
    bad = sorted(f"{mod} imports {target}" for mod, targets in MODULES.items()
                 if in_layer(mod, "vectors") for target in targets
                 if any(target == c or target.startswith(c + ".") for c in COMMANDS))
    assert bad == []


def test_only_the_facade_and_the_cli_see_every_layer() -> None:
    # The CLI reaches the library through the facade (and its results' types, for text).
    cli = {t for mod, targets in MODULES.items() if in_layer(mod, "cli") for t in targets}
    library = {t for t in cli if not in_layer(t, "cli")}
    assert "incremental_w2v.lineage" in library
    direct_calls = {"incremental_w2v.train.add_corpus.add_corpus",
                    "incremental_w2v.store.ops.export", "incremental_w2v.train.rebuild.rebuild"}
    assert not library & direct_calls


def test_subpackages_import_nothing_on_their_own() -> None:
    # An __init__ that imports its modules would turn sibling imports into cycles at run time.
    for path in PACKAGE.rglob("__init__.py"):
        if path.parent == PACKAGE:
            continue
        body = [n for n in ast.parse(path.read_text()).body
                if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert body == [], path


def test_no_import_cycles() -> None:
    edges = {m: {t for t in targets if t in MODULES and t != m and not m.startswith(t + ".")}
             for m, targets in MODULES.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in edges:
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_architecture_page_lists_every_module_with_its_docstring() -> None:
    """docs/architecture.md's module list is the tree: a new or renamed module shows."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = page.split("## Modules", 1)[1]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" and rel != "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = " ".join(doc.strip().split("\n\n")[0].split())
        if not first or not any(line.startswith(rel + " ") and line.endswith(first)
                                for line in listed.splitlines()):
            missing.append(f"{rel}: {first or 'no docstring'}")
    assert not missing, missing
