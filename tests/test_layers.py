"""The import graph of src/rdptrust: imports point downward only, and nothing is a cycle.

Layers (STYLE.md): ``cli -> monitor/lab/report/store/fix -> engine -> pki | net ->
protocol -> model``, with ``errors`` and ``files`` under everything. Every import is
read, including those inside functions, since a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "rdptrust"

_BASE = {"errors", "files"}
#: What each part of the package may import from rdptrust (besides itself).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "files": {"errors"},
    "model": _BASE,
    "protocol": _BASE | {"model"},
    "net": _BASE | {"model", "protocol"},
    "pki": _BASE | {"model", "protocol"},
    "engine": _BASE | {"model", "protocol", "net", "pki"},
    "fix": _BASE | {"model", "pki"},
    "store": _BASE | {"model", "pki", "engine"},
    # report may read value types of its siblings fix and lab (one layer, STYLE.md) and
    # the pure pki layer below; never store (records come from model) nor engine
    "report": _BASE | {"model", "protocol", "pki", "fix", "lab", "version"},
    "lab": _BASE | {"model", "protocol", "net", "pki"},
    "monitor": _BASE | {"model", "net", "pki", "engine", "report", "version"},
    "cli": {
        *_BASE,
        "model",
        "protocol",
        "net",
        "pki",
        "engine",
        "fix",
        "store",
        "report",
        "lab",
        "monitor",
        "version",
    },
    "__main__": {"cli"},
    # the public API composes what a library user needs
    "__init__": {*_BASE, "model", "engine", "fix", "net", "pki", "store", "version"},
}
#: Modules that must not do network I/O themselves (pure judgement and wire code).
NO_NETWORK = {"model", "protocol", "pki"}
NETWORK_MODULES = {"asyncio", "socket", "ssl", "httpx", "h11", "selectors", "uvloop"}
#: pki reads the system trust store's paths from ssl (no connection is made).
PURE_EXCEPTIONS = {"pki": {"ssl"}}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(("rdptrust", *parts)), path


def _imports(name: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue  # annotations only: no dependency when the code runs
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            # "from rdptrust.net import probe" names the module rdptrust.net.probe
            for alias in node.names:
                yield f"{module}.{alias.name}"


def _part(module: str) -> str | None:
    """The layer a rdptrust module belongs to (``rdptrust.net.probe`` -> ``net``)."""
    parts = module.split(".")
    if parts[0] != "rdptrust":
        return None
    if len(parts) == 1:
        return "__init__"
    if parts[1] == "__version__":
        return "version"
    return parts[1]


MODULES = dict(_modules())


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = set()
        for imported in _imports(name, path):
            if imported in MODULES and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_downward(name: str) -> None:
    part = _part(name)
    assert part is not None
    allowed = ALLOWED[part] | {part}
    wrong = sorted(
        imported
        for imported in set(_imports(name, MODULES[name]))
        if (other := _part(imported)) is not None
        and other not in allowed
        # "from rdptrust import __version__" is the version, not the public API
        and not (imported == "rdptrust" and part != "__init__")
    )
    assert not wrong, f"{name} ({part}) imports from a layer above it: {wrong}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _part(n) in NO_NETWORK))
def test_pure_layers_do_no_network_io(name: str) -> None:
    found = sorted(
        imported
        for imported in set(_imports(name, MODULES[name]))
        if imported.split(".")[0] in NETWORK_MODULES - PURE_EXCEPTIONS.get(_part(name) or "", set())
    )
    assert not found, f"{name} is meant to be pure but imports {found}"


def test_report_reads_no_database() -> None:
    for name, path in MODULES.items():
        if _part(name) == "report":
            imported = set(_imports(name, path))
            assert not any(
                i.split(".")[0] == "sqlite3" or i.startswith("rdptrust.store") for i in imported
            ), name


def test_no_import_cycle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    # a package's __init__ re-exporting its own modules is not a cycle between them
    real = [c for c in cycles if not _package_reexport(c, graph)]
    assert not real, f"import cycles: {real}"


def _package_reexport(component: list[str], graph: dict[str, set[str]]) -> bool:
    packages = [m for m in component if MODULES[m].name == "__init__.py"]
    rest = [m for m in component if m not in packages]
    if not packages:
        return False
    # drop the package's own __init__ and see whether the rest still forms a cycle
    for module in rest:
        inside = graph[module] & set(rest)
        if inside:
            return False
    return True


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    # The rule itself can fail: a pki module importing the network layer is caught.
    probe = tmp_path / "bad.py"
    probe.write_text("from rdptrust.net.http import fetch\nimport asyncio\n")
    imported = set(_imports("rdptrust.pki.bad", probe))
    assert "rdptrust.net.http" in imported
    assert _part("rdptrust.net.http") not in ALLOWED["pki"]
    assert "asyncio" in imported


def test_no_file_over_500_lines() -> None:
    long = {
        str(path.relative_to(SRC)): count
        for path in SRC.rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, f"files over 500 lines: {long}"
