"""FTRACEIPC_REQUIRE (tests/conftest.py, tests/components.py): a skip for lack of a component the
variable names is a failure; a skip for any other component, or any other skip, stays a skip; unset,
nothing changes. Checked on a small suite run by a real pytest, with this suite's conftest and helper."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

SUITE = '''
import pytest
from components import need, reason, requires, skip

def test_skip_in_the_test():
    skip("perf", "not here")

@pytest.mark.skipif(True, reason=reason("chromium", "not here"))
def test_skip_marker():
    pass

@pytest.fixture
def server():
    skip("neo4j", "no Java")

def test_skip_in_a_fixture(server):
    pass

def test_skip_of_another_component():
    skip("dbus", "not here")

def test_skip_without_a_component():
    pytest.skip("nothing to do with the machine")

def test_passes():
    pass
'''


def run_suite(tmp_path: Path, require: str | None) -> tuple[int, dict[str, int], str]:
    """(exit code, outcome counts, output) of the small suite under ``FTRACEIPC_REQUIRE=require``."""
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    shutil.copy(TESTS / "conftest.py", suite / "conftest.py")
    shutil.copy(TESTS / "components.py", suite / "components.py")
    (suite / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "FTRACEIPC_REQUIRE"}
    if require is not None:
        env["FTRACEIPC_REQUIRE"] = require
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--rootdir", suite,
                        suite], capture_output=True, text=True, env=env, cwd=suite, timeout=120)
    last = r.stdout.strip().splitlines()[-1]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last)}
    counts["errors"] = counts.pop("error", 0) + counts.pop("errors", 0)
    return r.returncode, counts, r.stdout


def test_unset_every_skip_stays_a_skip(tmp_path):
    rc, counts, out = run_suite(tmp_path, None)
    assert rc == 0, out
    assert counts == {"passed": 1, "skipped": 5, "errors": 0}, out


def test_a_skip_for_a_required_component_fails_in_a_test_a_marker_and_a_fixture(tmp_path):
    rc, counts, out = run_suite(tmp_path, "perf, chromium,neo4j")
    assert rc == 1, out
    # the marker's and the fixture's skips happen in setup: pytest counts those failures as errors
    assert counts == {"passed": 1, "failed": 1, "skipped": 2, "errors": 2}, out
    assert "FTRACEIPC_REQUIRE names perf, but this test would skip: requires perf: not here" in out
    assert "FTRACEIPC_REQUIRE names chromium, but this test would skip: requires chromium: not here" in out
    assert "FTRACEIPC_REQUIRE names neo4j, but this test would skip: requires neo4j: no Java" in out
    assert re.search(r"SKIPPED .*requires dbus: not here", out) and "nothing to do with the machine" in out


def test_a_skip_for_a_component_not_required_stays_a_skip(tmp_path):
    rc, counts, out = run_suite(tmp_path, "dbus")
    assert rc == 1, out
    assert counts == {"passed": 1, "failed": 1, "skipped": 4, "errors": 0}, out
    assert "FAILED test_suite.py::test_skip_of_another_component" in out


def test_an_unknown_component_is_a_mistake_in_the_test():
    from components import reason

    with pytest.raises(ValueError, match="unknown test component 'tracfs'"):
        reason("tracfs", "typo")
