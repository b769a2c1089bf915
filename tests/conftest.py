"""Suite-wide: a skip for lack of a component ``FTRACEIPC_REQUIRE`` names is a failure.

Component skips go through ``tests/components.py`` (reasons ``requires COMPONENT: ...``). With
``FTRACEIPC_REQUIRE=tracefs,neo4j,chromium,perf`` (as ``.ci/run`` sets it) a test that would skip for
lack of one of them fails instead, so a CI run cannot go green by skipping what it was meant to test.
Unset, skips stay skips.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import components  # noqa: E402


def _strict(rep) -> None:
    """Turn ``rep`` (a skip report) into a failure when its component is required."""
    if not rep.skipped or hasattr(rep, "wasxfail"):
        return
    text = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    component = components.component_of(text)
    if component is not None and component in components.required():
        rep.outcome = "failed"
        rep.longrepr = (f"{components.ENV} names {component}, but this test would skip: "
                        f"{text.removeprefix('Skipped: ')}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _strict(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _strict(outcome.get_result())
