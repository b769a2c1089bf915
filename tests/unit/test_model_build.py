"""build_model's process-wide settings: what it changes comes back, whatever happens."""

import gc

import pytest

from ftraceipc.model import build


def test_the_young_gc_threshold_is_raised_while_building_and_restored_after_an_error():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with build._young_gc_rarely():
            inside = gc.get_threshold()
            raise RuntimeError("a capture that fails half-way")
    assert inside[0] >= 100_000 and inside[1:] == before[1:]
    assert gc.get_threshold() == before


def test_a_missing_capture_leaves_the_gc_threshold_as_it_was(tmp_path):
    before = gc.get_threshold()
    with pytest.raises(Exception):
        build.build_model(tmp_path / "nothing.ftipc")
    assert gc.get_threshold() == before
