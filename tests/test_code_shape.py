"""Code-shape rule: no function in sparse/ is longer than 80 lines unless a comment says why.

A function over the limit passes when its ``def`` line (or the line just above it, e.g. a
decorator or a comment line) carries a ``# long:`` comment giving the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

MAX_LINES = 80
PACKAGE = Path(__file__).resolve().parent.parent / "sparse"

Row = tuple[str, str, int, bool]


def _file_rows(path: Path, root: Path, limit: int) -> list[Row]:
    """The functions of one file over ``limit`` lines (see :func:`long_functions`)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    stack: list[tuple[ast.AST, str]] = [(ast.parse("\n".join(lines), str(path)), "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                stack.append((child, f"{prefix}{child.name}."))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                length = child.end_lineno - start + 1
                if length > limit:
                    near = " ".join(lines[max(i, 0)] for i in
                                    (child.lineno - 1, child.lineno - 2, start - 2))
                    where = f"{path.relative_to(root.parent)}:{child.lineno}"
                    rows.append((where, name, length, "# long:" in near))
                stack.append((child, f"{name}."))
    return rows


def long_functions(root: Path = PACKAGE, limit: int = MAX_LINES) -> list[Row]:
    """Every function under ``root`` longer than ``limit`` lines.

    Returns ``(file:line, qualified name, length in lines, has a '# long:' reason)`` rows,
    longest first. The length runs from the first decorator to the last line of the body.
    """
    rows = [row for path in sorted(root.rglob("*.py")) for row in _file_rows(path, root, limit)]
    return sorted(rows, key=lambda row: -row[2])


def test_no_unexplained_long_functions() -> None:
    bad = [row for row in long_functions() if not row[3]]
    listed = "\n".join(f"  {where} {name} ({n} lines)" for where, name, n, _ in bad)
    assert not bad, f"functions over {MAX_LINES} lines without a '# long:' reason:\n{listed}"


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    text = f"def f():\n{body}\n\n# long: generated table\ndef g():\n{body}\n"
    (tmp_path / "m.py").write_text(text)
    rows = long_functions(tmp_path)
    assert sorted((name, n, ok) for _, name, n, ok in rows) == [("f", 81, False), ("g", 81, True)]


if __name__ == "__main__":
    for row in long_functions():
        print(*row)
