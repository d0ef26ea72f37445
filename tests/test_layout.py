"""The layout draws the architecture: the import graph of unsuprnn/, derived with `ast` (imports inside
functions included), has no circle and no import that points up a floor (`unsuprnn.FLOORS`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import unsuprnn

PACKAGE = Path(unsuprnn.__file__).parent


def module_names(root: Path) -> dict[str, Path]:
    """'data.folder' -> its file, for every module under root ('__init__' for root's own)."""
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (relative or absolute, at any depth of the code)."""
    mods, top = module_names(root), root.name
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" and name != "__init__" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".") if package else []
                    if node.level - 1 > len(base):  # Python refuses it when the line runs
                        raise ImportError(f"{path}:{node.lineno}: a relative import beyond the top of the package")
                    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                    stem = ".".join(base + ([node.module] if node.module else []))
                elif (node.module or "").split(".")[0] == top:
                    stem = node.module.partition(".")[2]
                else:
                    continue
                for alias in node.names:
                    full = f"{stem}.{alias.name}" if stem else alias.name
                    targets.add(full if full in mods else stem or "__init__")
            elif isinstance(node, ast.Import):
                targets |= {a.name.partition(".")[2] or "__init__" for a in node.names if a.name.split(".")[0] == top}
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def room(module: str) -> str:
    return module.split(".")[0]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layout_faults(root: Path, floors) -> list[str]:
    """Every fault of the layout: a room on no floor, an import up a floor, a circle of modules or of rooms."""
    floor_of = {r: i for i, (_, rooms) in enumerate(floors) for r in rooms}
    graph = import_graph(root)
    faults = [f"{r} stands on no floor: add it to FLOORS" for r in sorted({room(m) for m in graph}) if r not in floor_of]
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            a, b = floor_of.get(room(src)), floor_of.get(room(dst))
            if a is not None and b is not None and b > a:
                faults.append(f"{src} (floor {a + 1}, {floors[a][0]}) imports {dst} (floor {b + 1}, {floors[b][0]})")
    faults += [f"modules in a circle: {', '.join(c)}" for c in circles(graph)]
    rooms = {}
    for src, targets in graph.items():
        rooms.setdefault(room(src), set()).update(room(t) for t in targets if room(t) != room(src))
    faults += [f"rooms in a circle: {', '.join(c)}" for c in circles(rooms)]
    return faults


def test_the_package_keeps_its_floors():
    assert layout_faults(PACKAGE, unsuprnn.FLOORS) == []


def test_every_room_is_on_one_floor_once():
    rooms = [r for _, floor in unsuprnn.FLOORS for r in floor]
    assert len(rooms) == len(set(rooms))
    assert {room(m) for m in module_names(PACKAGE)} == set(rooms)


def test_the_checker_finds_a_planted_circle_an_upward_import_and_a_room_on_no_floor(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("def f():\n    from ..high import g\n")  # lazy, and up a floor
    (pkg / "high.py").write_text("from .low import a\nfrom pkg.low.a import f\n")
    (pkg / "stray.py").write_text("import os\n")
    floors = (("ground", ("__init__", "low")), ("top", ("high",)))
    assert import_graph(pkg)["high"] == {"low.a"} and import_graph(pkg)["low.a"] == {"high"}
    faults = layout_faults(pkg, floors)
    assert "stray stands on no floor: add it to FLOORS" in faults
    assert any(f.startswith("low.a (floor 1, ground) imports high (floor 2, top)") for f in faults)
    assert "modules in a circle: high, low.a" in faults and "rooms in a circle: high, low" in faults
    (pkg / "low" / "a.py").write_text("import os\n")
    assert layout_faults(pkg, floors + (("more", ("stray",)),)) == []
    (pkg / "stray.py").write_text("def f():\n    from ..errors import E\n")  # one dot too many
    with pytest.raises(ImportError, match="stray.py:2: a relative import beyond the top"):
        import_graph(pkg)
