"""The sandbox package's shape, as SECURITY.md promises it to a reviewer.

Code outside the package uses only its public surface (grader/sandbox/__init__.py);
the package imports nothing of Django or the rest of the project; each isolation
layer has its module.
"""
from __future__ import annotations

import ast
from pathlib import Path

import grader.sandbox as sandbox

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "grader" / "sandbox"
# Tests of the package's own internals may reach inside it; nothing else may.
INSIDE = (PACKAGE, ROOT / "tests" / "sandbox")
LAYER_MODULES = ("namespaces", "limits", "landlock", "seccomp", "syscalls", "guard", "policy")


def _python_files() -> list[Path]:
    skip = ("/.venv/", "/node_modules/", "/migrations/")
    return [p for p in ROOT.rglob("*.py") if not any(s in str(p) for s in skip)]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_nothing_outside_the_package_imports_from_inside_it() -> None:
    deep = []
    for path in _python_files():
        if any(path.is_relative_to(inside) for inside in INSIDE):
            continue
        for name in _imports(path):
            if name.startswith("grader.sandbox.") and name.split(".")[2] not in sandbox.__all__:
                deep.append(f"{path.relative_to(ROOT)}: {name}")
    assert deep == [], "deep imports (use grader.sandbox's public names):\n" + "\n".join(deep)


def test_the_public_surface_names_only_what_exists() -> None:
    assert all(hasattr(sandbox, name) for name in sandbox.__all__)


def test_the_package_imports_nothing_of_django_or_the_project() -> None:
    for path in PACKAGE.glob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in ("django", "rest_framework", "celery", "quiz", "config"), f"{path.name}: {name}"
            assert not (top == "grader" and not name.startswith("grader.sandbox")), f"{path.name}: {name}"


def test_each_isolation_layer_has_its_module_and_a_security_guide_exists() -> None:
    for name in LAYER_MODULES:
        assert (PACKAGE / f"{name}.py").is_file(), name
    guide = (PACKAGE / "SECURITY.md").read_text()
    for name in (*LAYER_MODULES, "template"):
        assert f"{name}.py" in guide, f"SECURITY.md says nothing of {name}.py"
