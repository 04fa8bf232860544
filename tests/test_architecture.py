"""The import boundaries of the design, checked on every run (cheaper than a review comment).

core/ never imports connectors/, workers/ or sandbox/; connectors/ never import workers/ or
sandbox/; mappings/ imports nothing of ours but core.model and core.errors; dramatiq only under
workers/; simple_salesforce only under connectors/salesforce/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"core", "connectors", "mappings", "workers", "sandbox"}

RULES: dict[str, set[str]] = {
    "core": {"connectors", "workers", "sandbox"},
    "connectors": {"workers", "sandbox"},
    "mappings": {"connectors", "workers", "sandbox"},
}
MAPPINGS_MAY_IMPORT_FROM_CORE = {"core.model", "core.errors"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(OURS))
def test_import_boundaries(package: str):
    violations = []
    for path in python_files(package):
        rel = path.relative_to(ROOT)
        for line, module in imports_of(path):
            top = module.split(".")[0]
            if top in RULES.get(package, set()):
                violations.append(f"{rel}:{line}: imports {module}")
            if package == "mappings" and top == "core" and module not in MAPPINGS_MAY_IMPORT_FROM_CORE:
                violations.append(f"{rel}:{line}: mappings may import only core.model/core.errors, not {module}")
            if top == "dramatiq" and package != "workers":
                violations.append(f"{rel}:{line}: dramatiq outside workers/")
            if top == "simple_salesforce" and not str(rel).startswith("connectors/salesforce"):
                violations.append(f"{rel}:{line}: simple_salesforce outside connectors/salesforce/")
    assert not violations, "\n".join(violations)


def test_the_checker_sees_imports():
    # guard against a checker that silently finds nothing
    assert any(m == "core.model" for _, m in imports_of(ROOT / "mappings" / "canonical.py"))
