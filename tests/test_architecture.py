"""The import rules of docs/architecture.md: each room of the package imports
only the rooms its row names."""

import ast
from pathlib import Path

import cotsieve

PACKAGE = Path(cotsieve.__file__).parent

ROOMS = {
    "engine": {"_core", "_texts", "patterns", "analysis"},
    "rules": {"rules"},
    "io": {"io"},
    "errors": {"errors"},
    "flow": {"pipeline", "progress", "report", "profiling", "demo"},
    "integrations": {"integrations"},
    "kernels": {"kernels"},
    "testing": {"testing"},
    "cli": {"cli", "__main__"},
    "aliases": {"ray", "profile_cli"},
    "top": {"__init__"},
}
MAY_IMPORT = {
    "engine": {"engine", "errors"},
    "rules": {"engine", "errors"},
    "io": {"engine", "errors"},
    "errors": {"integrations"},
    "flow": {"engine", "rules", "io", "errors", "integrations", "kernels", "testing"},
    "integrations": {"engine", "rules", "io"},
    "kernels": set(),
    "testing": set(),
    "cli": set(ROOMS),
    "aliases": {"integrations", "cli"},
    "top": {"engine", "rules", "io", "flow"},
}


def room_of(top_module: str) -> str:
    return next(room for room, modules in ROOMS.items() if top_module in modules)


def imported_modules(path: Path) -> set[str]:
    """The top-level cotsieve modules that ``path`` imports, at any depth of the file."""
    package_parts = path.relative_to(PACKAGE).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package_parts[: len(package_parts) - (node.level - 1)]
            targets = [*base, *node.module.split(".")] if node.module else [*base]
            if targets:
                found.add(targets[0])
            else:  # "from . import _core" at the top of the package
                found.update(alias.name for alias in node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.update(n.split(".")[1] for n in names if n.startswith("cotsieve."))
    return found


def test_each_room_imports_only_what_its_row_allows():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        room = room_of(top)
        for module in imported_modules(path) - {top}:
            if room_of(module) not in MAY_IMPORT[room] | {room}:
                broken.append(f"{path.relative_to(PACKAGE)} ({room}) imports {module} ({room_of(module)})")
    assert not broken, "\n".join(broken)


def test_only_the_json_lines_reader_reaches_the_core_from_io():
    callers = {p.name for p in (PACKAGE / "io").glob("*.py") if "_core" in imported_modules(p)}
    assert callers == {"jsonl.py"}
