"""Only the task classes (sparse/train/tasks/) know the tasks by name: everything else asks
the :class:`~sparse.train.tasks.Task` of a config for what differs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sparse.train.tasks import TASKS, task_of

SPARSE = Path(__file__).resolve().parents[1] / "sparse"


def _names_in(node: ast.AST) -> set[str]:
    """The task names among the string constants of ``node`` (a constant or a tuple, list or
    set of them)."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return {x.value for x in items if isinstance(x, ast.Constant) and x.value in TASKS}


def task_name_tests(source: str) -> list[str]:
    """The lines of ``source`` that compare something called a task with a task name
    (``cfg.task == "kws"``, ``task in ("asr", "kws")``) or offer task names as literal
    ``choices``; ``key == "spikes"`` (a batch key) is no such test."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for k, side in enumerate(sides):
                others = sides[:k] + sides[k + 1:]
                if _names_in(side) and any("task" in ast.unparse(o) for o in others):
                    found.append(f"{node.lineno}: {ast.unparse(node)}")
                    break
        elif isinstance(node, ast.keyword) and node.arg == "choices" and _names_in(node.value):
            found.append(f"{node.value.lineno}: choices={ast.unparse(node.value)}")
    return found


def test_the_scan_finds_task_name_tests_and_nothing_else():
    snippet = '''
if cfg.task == "kws":
    pass
x = 1 if "asr" != summary["task"] else 2
ok = model.task in ("asr", "kws")
p.add_argument("--task", choices=("asr", "kws"))
if key == "spikes":
    pass
kind = "spikes"
'''
    found = task_name_tests(snippet)
    assert sorted(int(f.split(":")[0]) for f in found) == [2, 4, 5, 6], found


def test_no_module_outside_the_task_classes_tests_a_task_name():
    offenders = {}
    for path in sorted(SPARSE.rglob("*.py")):
        if (SPARSE / "train" / "tasks") in path.parents:
            continue
        found = task_name_tests(path.read_text())
        if found:
            offenders[str(path.relative_to(SPARSE.parent))] = found
    assert not offenders, offenders


def test_every_demo_task_has_its_wording_and_config():
    from sparse.train import demo

    assert demo.TASKS == ("asr", "kws")  # the order of `sparse demo --task`'s choices
    for name in demo.TASKS:
        task = task_of(name)
        assert task.demo is not None, name
        assert demo.DEMO_CONFIGS[name]["task"] == name
        assert "{layers}" in task.demo.intro and "{dt" in task.demo.intro
    assert task_of("spikes").demo is None


def test_what_the_tasks_say_about_a_trained_model():
    # predict runs the models that hear audio; a classifier answers with classes
    assert [n for n, t in TASKS.items() if t.audio_input] == ["kws", "asr"]
    assert {n: t.is_classifier for n, t in TASKS.items()} == {
        "kws": True, "asr": False, "spikes": True}
    assert task_of("kws").clip_seconds() == pytest.approx(1.0)
    assert task_of("asr").clip_seconds() == 0.0
