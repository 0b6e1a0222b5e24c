"""The layering the folders show (docs/architecture.md), checked on every import statement, module level or not.

From the bottom: the pure packages (``hpbench.metrics``, ``models_zoo``: no Django), then the apps, each
importing only those below it: ``hpbench.catalog`` < ``annotate`` < ``hpbench.leaderboard`` <
``hpbench.exports`` < ``frontend``; ``hpbench.ops`` (``up`` and the demo) and ``worker`` (Celery tasks and
the services that need models) sit on top. The shared project modules (settings, ``hpbench.sql``,
``hpbench.dispatch``, ``hpbench.celery``, ...) are usable everywhere above the pure packages. Selectors (reads)
never import services (writes).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: package -> layer; a module may import its own package and packages of a lower layer.
LAYERS: dict[str, float] = {
    "hpbench.metrics": 0,
    "models_zoo": 0.5,  # its trainer reports Recall@K with hpbench.metrics
    "hpbench.catalog": 1,
    "annotate": 2,
    "hpbench.leaderboard": 3,
    "hpbench.exports": 4,
    "frontend": 5,
    "hpbench.ops": 6,
    "worker": 6,
}
#: Imports allowed against the order, each with its reason.
EXCEPTIONS = {
    # The command trains in its own process (a GPU machine's shell), through the worker's training service.
    ("hpbench.catalog.management.commands.train_model", "worker.training"),
    # A query's model results stay hidden while a campaign compares them (annotators could match sets to models);
    # the catalogue's query-results reads ask annotate. To go when those reads move above annotate.
    ("hpbench.catalog.selectors", "annotate.selectors"),
}


def _package(module: str) -> str | None:
    for package in sorted(LAYERS, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            return package
    if module == "hpbench" or module.startswith("hpbench."):
        return "hpbench"  # shared project modules
    return None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _violations() -> list[str]:
    out = []
    for path in sorted(ROOT.glob("**/*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in (".venv", "tests", "bench", "var") or "migrations" in relative.parts:
            continue
        module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        own = _package(module)
        if own is None or own == "hpbench":
            continue
        for imported in _imports(path):
            other = _package(imported)
            if other is None or other == own or any(
                module == source and (imported == target or imported.startswith(target + "."))
                for source, target in EXCEPTIONS
            ):
                continue
            if module.endswith(".selectors") and ".services" in f".{imported}.":
                out.append(f"{module} imports {imported}: reads never go through a service (it writes)")
            if other == "hpbench":
                if LAYERS[own] < 1:
                    out.append(f"{module} imports {imported}: the pure packages import no project module")
                continue
            if LAYERS[other] >= LAYERS[own]:
                out.append(f"{module} ({own}) imports {imported} ({other}), a package at its level or above")
    return out


def test_every_package_imports_only_the_layers_below_it():
    assert _violations() == []
