"""No test asserts how fast something ran (issue 14, item 7): a busy CI machine must not fail on
speed. Speed is measured in benchmarks/; tests wait for counts or events. A deadline that only
guards against a hang is allowed when it is named after ``HANG_GUARD`` (and is minutes long)."""

import ast

from tests.conftest import ROOT

CLOCKS = {"time", "perf_counter", "monotonic", "perf_counter_ns", "monotonic_ns", "time_ns"}


def reads_a_clock(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in CLOCKS
               and isinstance(n.func.value, ast.Name) and n.func.value.id == "time" for n in ast.walk(node))


def names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def timed_asserts(source: str) -> list[int]:
    """Lines of ``assert`` statements that compare a clock reading (directly or through a name
    assigned from one), other than against a hang guard (a name assigned from ``HANG_GUARD...``)."""
    tree = ast.parse(source)
    timed, guards = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and reads_a_clock(node.value):
            targets = {t.id for t in node.targets if isinstance(t, ast.Name)}
            is_guard = any("HANG_GUARD" in name for name in names_in(node.value))
            (guards if is_guard else timed).update(targets)
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)
            and (reads_a_clock(node.test) or names_in(node.test) & timed)
            and not names_in(node.test) & guards]


def test_the_checker_finds_a_timed_assert_and_spares_a_hang_guard():
    timed = ("import time\nstart = time.perf_counter()\nwork()\nassert time.perf_counter() - start < 5\n"
             "t0 = time.monotonic()\nassert elapsed(t0) < 2\n")
    assert timed_asserts(timed) == [4, 6]
    guard = "import time\nend = time.monotonic() + HANG_GUARD_S\nassert time.monotonic() < end, 'hung?'\n"
    assert timed_asserts(guard) == []


def test_no_test_asserts_a_wall_clock_limit():
    found = {str(path.relative_to(ROOT)): lines for path in sorted((ROOT / "tests").rglob("*.py"))
             if path.name != "test_no_wall_clock_asserts.py"
             and (lines := timed_asserts(path.read_text()))}
    assert found == {}, f"wall-clock assertions (move them to benchmarks/): {found}"
