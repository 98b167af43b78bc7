"""Code-shape rule: no function in sparse/ is longer than 80 lines unless a comment says why.

A function over the limit passes when its ``def`` line (or the line just above it, e.g. a
decorator or a comment line) carries a ``# long:`` comment giving the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

MAX_LINES = 80
PACKAGE = Path(__file__).resolve().parent.parent / "sparse"


def long_functions(root: Path = PACKAGE, limit: int = MAX_LINES) -> list[tuple[str, str, int, bool]]:
    """Every function under ``root`` longer than ``limit`` lines.

    Returns ``(file:line, qualified name, length in lines, has a '# long:' reason)`` rows,
    longest first. The length runs from the first decorator to the last line of the body.
    """
    rows = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines), filename=str(path))

        def visit(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}{child.name}"
                    start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                    length = child.end_lineno - start + 1
                    if length > limit:
                        near = lines[child.lineno - 1] + lines[max(child.lineno - 2, 0)]
                        near += lines[max(start - 2, 0)]
                        rel = path.relative_to(root.parent)
                        rows.append((f"{rel}:{child.lineno}", name, length, "# long:" in near))
                    visit(child, f"{name}.")
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")

        visit(tree, "")
    return sorted(rows, key=lambda row: -row[2])


def test_no_unexplained_long_functions() -> None:
    bad = [row for row in long_functions() if not row[3]]
    assert not bad, "functions over %d lines without a '# long:' reason:\n%s" % (
        MAX_LINES,
        "\n".join(f"  {where} {name} ({n} lines)" for where, name, n, _ in bad),
    )


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def f():\n{body}\n\n# long: generated table\ndef g():\n{body}\n")
    rows = long_functions(tmp_path)
    assert [(name, n, ok) for _, name, n, ok in rows] == [("f", 81, False), ("g", 81, True)]


if __name__ == "__main__":
    for row in long_functions():
        print(*row)
