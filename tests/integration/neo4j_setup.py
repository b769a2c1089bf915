"""The repo's Neo4j script (scripts/neo4j/neo4j_server.py) for the tests: loaded once as a module,
plus ``ensure_jars()``, which skips a test only when Java or Maven Central is missing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components import skip  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "neo4j" / "neo4j_server.py"


def _load():
    name = "ftraceipc_neo4j_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


ns = _load()


def ensure_jars() -> None:
    reason = ns.java_reason()
    if reason:
        skip("neo4j", f"Neo4j server: {reason}")
    if ns.provisioned() is not None:
        return
    try:
        ns.provision()
    except ns.Neo4jError as e:
        unreachable = ns.maven_central_reason()
        if unreachable:
            skip("neo4j", f"Neo4j server jars not cached and {unreachable}")
        raise AssertionError(f"provisioning failed although Maven Central answers: {e}") from e
