"""The package's layers: capture → decode → model → graph → detect → report → cli. Every module of
ftraceipc imports (it loads, with no cycle at import time), and no module imports one of a higher
layer, at its top or inside a function (the AST of each file is read, so lazy imports count too)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import ftraceipc

PACKAGE = Path(ftraceipc.__file__).parent
# Modules outside the numbered layers: the base every layer may use (errors, config, the version),
# and problems.py, which reads captures, decoder statistics and model gaps: the model layer.
LAYERS = ["capture", "decode", "model", "graph", "detect", "report", "live", "cli"]
BASE = {"ftraceipc", "ftraceipc.errors", "ftraceipc.config"}
PLACED = {"ftraceipc.problems": "model", "ftraceipc.cli": "cli", "ftraceipc.__main__": "cli"}
# Known exceptions, each with its reason (fix them, do not add to them): at the end of a capture,
# capture.capture scans the pages it wrote for the kernel's missed-event flags with the decoder's
# page-header parser and page walker (a lazy import inside _scan_page_flags).
KNOWN = {("ftraceipc.capture.capture", "ftraceipc.decode.formats"),
         ("ftraceipc.capture.capture", "ftraceipc.decode.ringbuf")}


def modules() -> list[str]:
    out = []
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = p.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def layer(mod: str) -> int:
    """-1 for the base; else the index in LAYERS."""
    if mod in BASE:
        return -1
    if mod in PLACED:
        return LAYERS.index(PLACED[mod])
    parts = mod.split(".")
    assert len(parts) >= 2 and parts[1] in LAYERS, f"{mod} is in no layer: add it to LAYERS, BASE or PLACED"
    return LAYERS.index(parts[1])


def imports(mod: str) -> set[str]:
    """The ftraceipc modules ``mod`` imports anywhere in its file (``from X import Y`` counts X, and
    X.Y when that is a module)."""
    path = PACKAGE.parent / (mod.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / mod.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    known = set(modules())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("ftraceipc")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                node.module.startswith("ftraceipc"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known}
    return out - {mod}


@pytest.mark.parametrize("mod", [m for m in modules() if m != "ftraceipc.__main__"])  # that one runs the CLI
def test_every_module_imports(mod):
    importlib.import_module(mod)


@pytest.mark.parametrize("mod", modules())
def test_no_module_imports_a_higher_layer(mod):
    mine = layer(mod)
    higher = sorted(m for m in imports(mod) if layer(m) > mine and (mod, m) not in KNOWN)
    assert not higher, f"{mod} (layer {LAYERS[mine] if mine >= 0 else 'base'}) imports {higher}"


def test_the_known_exceptions_still_exist():
    """An exception that was fixed is taken off the list (so the list cannot hide a new one)."""
    for mod, other in KNOWN:
        assert other in imports(mod) and layer(other) > layer(mod), (mod, other)


def test_detect_and_report_do_not_import_each_other_both_ways():
    detect = [m for m in modules() if m.startswith("ftraceipc.detect")]
    assert not any(i.startswith("ftraceipc.report") for m in detect for i in imports(m))
    assert any(i.startswith("ftraceipc.detect") for m in modules() if m.startswith("ftraceipc.report")
               for i in imports(m))  # the report renders the detect layer's Analysis


def test_the_layer_check_sees_a_lazy_import_of_a_higher_layer(tmp_path):
    """The checker reads imports inside functions too (a guard against a checker that sees nothing)."""
    src = "def f():\n    from ftraceipc.report.findings import write_text\n"
    tree = ast.parse(src)
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert found == {"ftraceipc.report.findings"}
    assert layer("ftraceipc.report.findings") > layer("ftraceipc.detect.pipeline")
