"""`huizhi new-plugin` as an outside developer meets it: scaffold, pip install, its own tests,
the conformance check, loaded by a host (issue 11, point 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from huizhi import __version__
from huizhi.scaffold import create_plugin

# packaging, docs and page text: the same on either store (tests/conftest.py)
pytestmark = pytest.mark.store_independent


def run(*args: str, cwd: Path, site: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HUIZHI_CONFIG", "HUIZHI_DATABASE_URL", "PYTHONPATH")}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env["HUIZHI_DATA_DIR"] = str(cwd / "var")
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_scaffold_titles_and_requirement(tmp_path):
    root = create_plugin(tmp_path, "water", "swj", "水务监测台账")
    meta = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    (requirement,) = meta["project"]["dependencies"]
    assert requirement == f"huizhi>={'.'.join(__version__.split('.')[:2])}"  # the package, not the API version
    assert meta["project"]["entry-points"]["huizhi"] == {"water": "huizhi_water.plugin"}
    source = (root / "huizhi_water" / "plugin.py").read_text(encoding="utf-8")
    assert 'title="水务监测台账"' in source and "台账台账" not in source
    assert "kit.Pick(" in source and "def huizhi_tiles" in source and "def huizhi_demo_rows" in source
    assert (root / "tests" / "test_water_plugin.py").is_file() and (root / "README.md").is_file()
    other = create_plugin(tmp_path, "roads", "jtj", "道路养护")
    assert 'title="道路养护台账"' in (other / "huizhi_roads" / "plugin.py").read_text(encoding="utf-8")


def test_pip_accepts_the_scaffolds_host_requirement(tmp_path):
    """pip resolves the scaffold's ``huizhi>=…`` against the installed host: the requirement that
    named the API version (huizhi>=1.0) instead of the package version (0.1.0) failed here. The
    rest of the route (install, its tests, check-plugin, the portal) is the guide's tutorial,
    run by tests/test_plugin_guide.py."""
    made = run(sys.executable, "-m", "huizhi.cli", "new-plugin", "water", "--department", "swj",
               "--title", "水务监测台账", "--directory", str(tmp_path / "src"), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "huizhi check-plugin" in made.stdout
    resolved = run(sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-build-isolation",
                   "--no-index", str(tmp_path / "src" / "water"), cwd=tmp_path)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    (tmp_path / "src" / "water" / "pyproject.toml").write_text(
        (tmp_path / "src" / "water" / "pyproject.toml").read_text(encoding="utf-8").replace("huizhi>=0.1", "huizhi>=1.0"),
        encoding="utf-8",
    )
    refused = run(sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-build-isolation",
                  "--no-index", str(tmp_path / "src" / "water"), cwd=tmp_path)
    assert refused.returncode != 0  # the old scaffold's requirement: pip cannot satisfy it
