"""The one home of the test suite's skips for a missing component of the machine.

A test that cannot run without something of the machine (tracefs as root, a Neo4j server, Chromium,
perf, ...) skips through this module, never with a bare ``pytest.skip``/``skipif``:

    from components import need, requires, skip
    pytestmark = requires("tracefs")             # a marker: skip when tracefs (as root) is missing
    @requires("perf")                            # the same on one test
    need("tracefs")                              # the same inside a test or fixture
    skip("neo4j", "no Java 17+")                 # inside a test or fixture, once the reason is known

Every such skip reason starts with ``requires COMPONENT:``. When ``FTRACEIPC_REQUIRE`` (a comma
list, e.g. ``tracefs,neo4j,chromium,perf``; ``.ci/run`` sets it) names the component, the top-level
``tests/conftest.py`` turns the skip into a failure: CI cannot go green by skipping what it was meant
to run. A component not in the list still skips, with its standard reason and how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ENV = "FTRACEIPC_REQUIRE"
TRACEFS_INSTANCES = Path("/sys/kernel/tracing/instances")

# component -> how to get it (appended to every skip reason of it)
COMPONENTS: dict[str, str] = {
    "tracefs": "run as root with tracefs mounted (mount -t tracefs nodev /sys/kernel/tracing)",
    "neo4j": "needs Java 17+ and the Neo4j jars (python3 scripts/neo4j/neo4j_server.py provision)",
    "chromium": "install Debian's chromium (apt-get install -y chromium)",
    "perf": "install perf (apt-get install -y linux-perf)",
    "dbus": "install dbus-daemon and dbus-send (apt-get install -y dbus)",
    "util-linux": "install setpriv and unshare (apt-get install -y util-linux)",
    "tmux": "install tmux (apt-get install -y tmux): the live TUI is driven in a real terminal",
}

_REASON = re.compile(r"^(?:Skipped: )?requires ([\w-]+): ")


def required() -> set[str]:
    """The components ``FTRACEIPC_REQUIRE`` names (empty when unset)."""
    return {c.strip() for c in os.environ.get(ENV, "").split(",") if c.strip()}


def reason(component: str, why: str) -> str:
    """The standard skip reason: ``requires COMPONENT: WHY (HOW TO GET IT)``."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown test component {component!r}; known: {', '.join(COMPONENTS)}")
    return f"requires {component}: {why} ({COMPONENTS[component]})"


def component_of(skip_reason: str) -> str | None:
    """The component a skip reason made by ``reason`` names, else None."""
    m = _REASON.match(skip_reason)
    return m.group(1) if m else None


def missing(component: str) -> str | None:
    """Why ``component`` cannot be used here (None when it can), for the components a plain check
    decides; the others (neo4j: Java and jars, util-linux's namespace probe) are decided where used."""
    if component == "tracefs":
        if os.geteuid() != 0:
            return "needs root"
        if not TRACEFS_INSTANCES.is_dir():
            return f"tracefs not mounted at {TRACEFS_INSTANCES.parent}"
        return None
    if component == "perf":
        return None if shutil.which("perf") else "no perf on PATH"
    if component == "tmux":
        return None if shutil.which("tmux") else "no tmux on PATH"
    if component == "dbus":
        absent = [t for t in ("dbus-daemon", "dbus-send") if shutil.which(t) is None]
        return f"no {' or '.join(absent)} on PATH" if absent else None
    if component == "util-linux":
        absent = [t for t in ("setpriv", "unshare") if shutil.which(t) is None]
        return f"no {' or '.join(absent)} on PATH" if absent else None
    raise ValueError(f"no plain check for component {component!r}")


def skip(component: str, why: str) -> None:
    """Skip the calling test (or fixture) for lack of ``component`` (a failure when it is required)."""
    __tracebackhide__ = True  # the skip is reported where the test called this
    pytest.skip(reason(component, why))


def need(component: str) -> None:
    """Skip the calling test (or fixture) when ``missing(component)`` says it is not here."""
    __tracebackhide__ = True
    why = missing(component)
    if why is not None:
        skip(component, why)


def requires(component: str) -> pytest.MarkDecorator:
    """A ``skipif`` marker for a component ``missing`` can check."""
    why = missing(component)
    return pytest.mark.skipif(why is not None, reason=reason(component, why or "present"))
