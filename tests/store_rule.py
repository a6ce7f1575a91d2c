"""Which tests depend on the store: ./dev test runs the suite on each store, and a test that
cannot reach the store runs in the first pass only (tests/conftest.py applies this).

A plain module (not conftest.py) so that tests can import it unambiguously."""

from __future__ import annotations

from pathlib import Path

import pytest

# The fixtures through which a test reaches the store under test (pytest lists a test's fixtures
# with everything they request, so make_host, huizhi_host and the portals count through these).
STORE_FIXTURES = frozenset({"database_url", "session_database_url", "portal_database_url", "huizhi_database_url"})
# Names a test module uses when it picks a store itself.
STORE_CHOOSERS = ("test_store", "create_pg_database", "create_database", "HUIZHI_TEST_DB")


def store_independent(item: pytest.Item, sources: dict[Path, bool]) -> bool:
    """Marked so, or neither asking for a store fixture nor choosing a store in its module."""
    if item.get_closest_marker("store_independent"):
        return True
    if STORE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return False
    path = Path(item.path)
    if path not in sources:
        sources[path] = any(name in path.read_text(encoding="utf-8") for name in STORE_CHOOSERS)
    return not sources[path]
