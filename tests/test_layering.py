"""The layering rule: ``anograph`` is a library, orchestration sits on top of it, never the other way.

An AST walk over every module (imports inside functions included) so a lazy import cannot
slip through. There is no exception: the command-line entry point that runs flows is
:mod:`flows.cli`, which hands the flow commands to the library's CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ORCHESTRATION = ("prefect", "flows", "tasks")


def imports(path: Path) -> list[tuple[str, str | None, int]]:
    """``(imported module, enclosing function or None, line)`` for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, function, child.lineno))
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            visit(child, inner)

    visit(tree, None)
    return found


def top_package(module: str) -> str:
    return module.split(".")[0]


def python_files(folder: str) -> list[Path]:
    files = sorted((REPO / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}/"
    return files


def test_the_walk_sees_imports_inside_functions(tmp_path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("import os\n\ndef run():\n    from flows.pipeline import pipeline\n    import prefect\n")
    assert imports(module) == [("os", None, 1), ("flows.pipeline", "run", 4), ("prefect", "run", 5)]


def test_the_library_imports_no_orchestration() -> None:
    violations = []
    for path in python_files("anograph"):
        relative = path.relative_to(REPO).as_posix()
        for module, function, line in imports(path):
            if top_package(module) not in ORCHESTRATION:
                continue
            where = f"in {function}()" if function else "at module level"
            violations.append(f"{relative}:{line} imports {module} {where}")
    assert not violations, "anograph/ must not import prefect, flows or tasks:\n" + "\n".join(violations)


def test_the_library_cli_refuses_flow_commands_without_the_flows(tmp_path, capsys) -> None:
    """Without :mod:`flows.cli` handing in the flow commands, ``run`` is a clear error, not an import."""
    from anograph.cli import main

    assert main(["demo", "--out", str(tmp_path / "out")]) == 2
    assert "runs a Prefect flow" in capsys.readouterr().err


@pytest.mark.parametrize("folder", ["tasks"])
def test_tasks_do_not_import_flows(folder: str) -> None:
    violations = [f"{path.relative_to(REPO).as_posix()}:{line} imports {module}"
                  for path in python_files(folder) for module, _, line in imports(path)
                  if top_package(module) == "flows"]
    assert not violations, "tasks/ wrap library calls and must not import flows/:\n" + "\n".join(violations)


def test_importing_the_library_and_its_cli_does_not_import_prefect() -> None:
    """``anograph score`` must not pay for Prefect: importing the CLI loads no orchestration module."""
    import subprocess
    import sys

    code = ("import sys, anograph.cli, anograph.cli.commands; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'flows', 'tasks'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
