"""The plugin author guide (docs/plugin-guide.md) works as written and leaves nothing out
(issue 11, point 6): its tutorial's commands and edits are run here, in order, in a fresh
folder; and every fact a plugin author needs is in it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from huizhi import HOST_API_VERSION, __version__, district, hookspecs, params, testing
from huizhi.context import LedgerReader
from huizhi.plugin_docs import hook_names
from huizhi.specs import ColumnType

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugin-guide.md"
STEP = re.compile(r"<!-- tutorial: (run|append|replace)\s*(\S*) -->\n```[a-z]*\n(.*?)```", re.S)


# packaging, docs and page text: the same on either store (tests/conftest.py)
pytestmark = pytest.mark.store_independent


def tutorial_steps(text: str) -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in STEP.finditer(text)]


def test_the_tutorial_runs_as_written(tmp_path):
    steps = tutorial_steps(GUIDE.read_text(encoding="utf-8"))
    assert [kind for kind, _, _ in steps].count("run") >= 4 and any(k == "append" for k, _, _ in steps)
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_") or k.startswith("HUIZHI_TEST_")}
    env |= {
        "HUIZHI_DATABASE_URL": f"duckdb:///{tmp_path / 'tutorial.duckdb'}",
        "HUIZHI_DATA_DIR": str(tmp_path / "var"),
        # the tutorial's portal shows every installed plugin; here only the one it builds, so that
        # `huizhi seed` does not seed the shipped plugins' 150,000 rows
        "HUIZHI_LOAD_PLUGINS": "water",
    }
    outputs: list[tuple[str, str]] = []
    for kind, path, body in steps:
        if kind == "append":
            target = tmp_path / path
            target.write_text(target.read_text(encoding="utf-8") + "\n\n" + body, encoding="utf-8")
        elif kind == "replace":
            old = "\n".join(line[1:] for line in body.splitlines() if line.startswith("-"))
            new = "\n".join(line[1:] for line in body.splitlines() if line.startswith("+"))
            target = tmp_path / path
            source = target.read_text(encoding="utf-8")
            assert source.count(old) == 1, f"the guide's edit of {path}: {old!r} is not in the file exactly once"
            target.write_text(source.replace(old, new), encoding="utf-8")
        else:
            for line in body.splitlines():
                assert line.startswith("$ "), f"a tutorial console line must start with '$ ': {line!r}"
                args = shlex.split(line[2:])
                done = subprocess.run(_command(args, site), env=env | {"PYTHONPATH": str(site)}, cwd=tmp_path,
                                      capture_output=True, text=True, timeout=600)
                assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
                outputs.append((line, done.stdout))
    said = dict(outputs)
    checks = [out for line, out in outputs if "check-plugin" in line]
    assert len(checks) == 3 and all("check-plugin: PASSED" in out for out in checks)
    assert "water_meters: no demo rows" in checks[-1]  # as the guide says
    assert "2 ledger(s), 1 page(s), 2 tile(s)" in checks[-1]  # the tutorial's ledger and tile are in
    assert "distribution huizhi-water 0.1.0" in checks[-1]  # checked as installed
    assert "3 passed" in said["$ pytest plugins/water"]
    water = next(row for row in said["$ huizhi plugins"].splitlines() if row.startswith("water "))
    assert "enabled" in water and "区水务局" in water
    assert "water_records: 6 rows" in said["$ huizhi seed"]


def _command(args: list[str], site: Path) -> list[str]:
    """A tutorial command as this test runs it: in this interpreter; `pip install -e` into a
    folder of its own instead of the repository's .venv (then on PYTHONPATH)."""
    match args:
        case ["huizhi", *rest]:
            return [sys.executable, "-m", "huizhi.cli", *rest]
        case ["pip", "install", "-e", path]:
            return [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), path]
        case ["pytest", *rest]:
            return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *rest]
    raise AssertionError(f"the tutorial runs a command this test does not know: {args}")


def test_the_guide_leaves_nothing_out():
    text = GUIDE.read_text(encoding="utf-8")
    missing = []

    def need(fact: str, what: str) -> None:
        if fact not in text:
            missing.append(f"{what}: {fact}")

    for dept in district.DEPARTMENTS:
        need(f"| `{dept.id}` | {dept.name} |", "department")
    for street in district.street_names():
        need(street, "street")
    need(f"`district.LON_RANGE` = {district.LON_RANGE}", "longitude bounds")
    need(f"`district.LAT_RANGE` = {district.LAT_RANGE}", "latitude bounds")
    for dtype in typing.get_args(ColumnType):
        need(f"| `{dtype}` |", "column type")
    members = [n for n, v in vars(LedgerReader).items() if not n.startswith("_")] + ["rows"]
    for member in members:
        need(f"`{member}", "LedgerReader member")
    for name in params.__all__:
        need(f"`params.{name}(", "huizhi.params function")
    for name in hook_names():
        assert getattr(hookspecs, name).__doc__
        if name not in ("huizhi_plugin_info", "huizhi_ledgers", "huizhi_pages", "huizhi_tiles", "huizhi_connectors"):
            need(f"`{name}", "hook")
    for name in [*testing.__all__, "huizhi_host", "huizhi_database_url"]:
        need(f"`{name}", "huizhi.testing name")
    need(f"now {HOST_API_VERSION}", "host API version")
    need(f"now {__version__}", "host package version")
    for topic in ("### Permissions", "### Ledgers", "### Connectors", "### Workflows", "## Testing a plugin",
                  "## Demo rows and demo identities", "## Versioning and compatibility", "(plugins.md)"):
        need(topic, "section")
    assert not missing, "docs/plugin-guide.md lacks:\n" + "\n".join(missing)
    assert "docs/plugin-guide.md" in (ROOT / "README.md").read_text(encoding="utf-8")
