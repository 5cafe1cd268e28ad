"""Issue 8, done-when 6: size budgets and the rules for Radicale that the linters cannot check.

Modules stay under 400 lines and functions under 45 (Alembic migrations aside);
nothing in server/ or storage_plugin/ keeps state in context variables, and no
module assigns attributes on Radicale's modules or classes (the plugins are
injected through Radicale's configuration, DESIGN.md 2.2).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("server", "storage_plugin", "crm_model")
MIGRATIONS = ROOT / "crm_model" / "migrations" / "versions"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 45


def _modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py")
                  if MIGRATIONS not in path.parents)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_packages_have_modules_to_check():
    assert len(_modules(*PACKAGES)) > 20


@pytest.mark.parametrize("path", _modules(*PACKAGES), ids=_name)
def test_module_is_within_the_line_budget(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines; split it"


@pytest.mark.parametrize("path", _modules(*PACKAGES), ids=_name)
def test_functions_are_within_the_line_budget(path):
    too_long = [f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
                for node in ast.walk(_tree(path))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not too_long, f"{_name(path)}: " + "; ".join(too_long)


def _imported_modules(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", _modules("server", "storage_plugin"), ids=_name)
def test_no_context_variables(path):
    imported = {name.split(".")[0] for name in _imported_modules(_tree(path))}
    assert "contextvars" not in imported, f"{_name(path)} imports contextvars; pass state explicitly"


def _radicale_names(tree: ast.Module) -> set[str]:
    """The local names a module binds to Radicale's modules and objects."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names
                      if alias.name.split(".")[0] == "radicale"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "radicale":
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _attribute_assignments(tree: ast.Module) -> Iterator[tuple[int, str | None]]:
    """(line, root name) of every attribute assigned, deleted or set with setattr()."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = [t for target in node.targets
                       for t in (target.elts if isinstance(target, ast.Tuple | ast.List) else [target])]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("setattr", "delattr") and node.args):
            yield node.lineno, _root_name(node.args[0])
            continue
        else:
            continue
        yield from ((node.lineno, _root_name(t.value)) for t in targets if isinstance(t, ast.Attribute))


@pytest.mark.parametrize("path", _modules(*PACKAGES), ids=_name)
def test_nothing_patches_radicale(path):
    tree = _tree(path)
    radicale = _radicale_names(tree)
    patched = [f"line {line}: {name}" for line, name in _attribute_assignments(tree) if name in radicale]
    assert not patched, f"{_name(path)} assigns attributes on Radicale: " + "; ".join(patched)


def test_the_patch_check_sees_a_patch():
    tree = ast.parse("import radicale.app\nfrom radicale import config as c\n"
                     "radicale.app.Application.x = 1\nsetattr(c, 'load', None)\nother.y = 2\n")
    assert [name for _, name in _attribute_assignments(tree) if name in _radicale_names(tree)] == ["radicale", "c"]
