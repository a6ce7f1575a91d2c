"""The outside plugin (examples/parks, issue 11 point 7): built as a wheel, installed with pip,
discovered through its entry point, its own tests green on huizhi.testing, passed by check-plugin.
The browser test tests/browser/test_outside_plugin_e2e.py shows it in the portal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from outside_plugin import EXAMPLE, ROOT, build_and_install

from huizhi.plugin_docs import contract_violations
from huizhi.testing import create_database, drop_database, test_store

# packaging, docs and page text: the same on either store (tests/conftest.py)
pytestmark = pytest.mark.store_independent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return build_and_install(tmp_path_factory.mktemp("outside"))


def _run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_") or k.startswith("HUIZHI_TEST_")}
    env["PYTHONPATH"] = str(site)
    env["HUIZHI_DATA_DIR"] = str(cwd / "var")
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_written_only_against_the_documented_contract():
    sources = sorted((EXAMPLE / "huizhi_parks").glob("*.py"))
    assert sources
    problems = [p for f in sources for p in contract_violations(f.read_text(encoding="utf-8"), str(f))]
    assert not problems, "\n".join(problems)
    assert str(EXAMPLE.relative_to(ROOT)).startswith("examples/")


def test_its_own_tests_pass_from_the_installed_wheel(site, tmp_path):
    # run from a copy of its tests only: the sources must come from the wheel, not the folder
    tests = tmp_path / "tests"
    subprocess.run(["cp", "-r", str(EXAMPLE / "tests"), str(tests)], check=True)
    done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], site, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    where = _run([sys.executable, "-c", "import huizhi_parks; print(huizhi_parks.__file__)"], site, tmp_path)
    assert where.stdout.strip().startswith(str(site)), where.stdout


def test_discovered_and_passed_by_check_plugin(site, tmp_path):
    url = create_database(tmp_path) if test_store() == "postgres" else f"duckdb:///{tmp_path / 'check.duckdb'}"
    try:
        checked = _run([sys.executable, "-m", "huizhi.cli", "check-plugin", "huizhi-parks", "--database-url", url],
                       site, tmp_path)
    finally:
        drop_database(url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "distribution huizhi-parks 0.1.0" in checked.stdout and "check-plugin: PASSED" in checked.stdout
    listed = _run([sys.executable, "-m", "huizhi.cli", "plugins"], site, tmp_path)
    line = next(row for row in listed.stdout.splitlines() if row.startswith("parks "))
    assert "enabled" in line and "区园林绿化局" in line, listed.stdout
