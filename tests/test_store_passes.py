"""./dev test runs the suite on each store; a test that cannot reach the store runs in the first
pass only (tests/store_rule.py). These check the rule that decides it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from store_rule import STORE_CHOOSERS, store_independent


class _Item:
    """What the rule reads of a collected test: its module, its fixtures, its markers."""

    def __init__(self, path: Path, fixturenames: tuple[str, ...] = (), marked: bool = False) -> None:
        self.path, self.fixturenames, self.marked = path, fixturenames, marked

    def get_closest_marker(self, name: str) -> Any:
        return name if self.marked and name == "store_independent" else None


def test_a_test_with_no_store_fixture_is_store_independent(request: pytest.FixtureRequest) -> None:
    assert store_independent(request.node, {})


def test_a_test_on_a_host_is_not(make_host, request: pytest.FixtureRequest) -> None:
    assert "huizhi_database_url" in request.node.fixturenames  # make_host requests it, through huizhi_host
    assert not store_independent(request.node, {})


@pytest.mark.parametrize("chooser", STORE_CHOOSERS)
def test_a_module_that_picks_its_store_is_not(tmp_path: Path, chooser: str) -> None:
    module = tmp_path / "test_picks.py"
    module.write_text(f"from databases import {chooser}\n", encoding="utf-8")
    assert not store_independent(_Item(module), {})
    plain = tmp_path / "test_plain.py"
    plain.write_text("def test_x():\n    assert 1 + 1 == 2\n", encoding="utf-8")
    assert store_independent(_Item(plain), {})
    assert store_independent(_Item(module, marked=True), {})  # the marker still wins
