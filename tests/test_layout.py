"""The layout's rules: the method stands alone, imports form no cycle, files stay short, the
package top level stays small (docs/DESIGN.md draws it)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_ltd"


def imported(path: Path) -> set[str]:
    """Every module an ``import`` statement of ``path`` names, function-level ones included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_method_imports_neither_lightning_nor_hydra_nor_our_checks():
    forbidden = ("lightning", "hydra", "omegaconf", "lightning_ltd.checks", "lightning_ltd.callbacks")
    found = {
        module_name(path): sorted(n for n in imported(path) if any(n == f or n.startswith(f"{f}.") for f in forbidden))
        for path in (PACKAGE / "ltd").glob("*.py")
    }
    assert {name: names for name, names in found.items() if names} == {}


def test_no_import_cycle_between_modules():
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges = {
        name: {other for other in imported(path) if other in modules and other != name and not other.startswith(name)}
        for name, path in modules.items()
        if path.name != "__init__.py"  # a package re-exporting its children is not a cycle
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and not seen.add(nxt) and reaches(nxt, goal, seen))
            for nxt in edges.get(start, ())
        )

    assert [name for name in edges if reaches(name, name, set())] == []


def test_files_stay_short_and_the_top_level_small():
    long = {module_name(p) for p in PACKAGE.rglob("*.py") if len(p.read_text().splitlines()) > 300}
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
    assert long == set()
