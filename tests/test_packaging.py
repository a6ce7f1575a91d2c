"""The host builds as a wheel that works without the repository (issue 3, item 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_runs_without_the_repo(tmp_path):
    wheels = tmp_path / "wheels"
    # Build from a clean copy: setuptools reuses a checkout's build/ folder, which can hold
    # modules that the package list no longer (or never did) include.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "var", "test-artifacts", "__pycache__", "plugins", "tests", "bench"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = wheels.glob("huizhi-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # every source module of the host distribution, wherever it lives in the repo
    for folder, package in (("platform/huizhi", "huizhi"), ("pages", "huizhi_pages"),
                            ("connectors", "huizhi_connectors"), ("seeds", "huizhi_seeds")):
        for source in (ROOT / folder).rglob("*.py"):
            installed = f"{package}/{source.relative_to(ROOT / folder).as_posix()}"
            assert installed in names, f"{installed} missing from the wheel (pyproject [tool.setuptools] packages)"
    assert "huizhi/migrations/script.py.mako" in names
    assert not any(n.startswith("platform/") for n in names), "the wheel must not ship a 'platform' package"

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # Only the installed copy and the dependencies (already in this environment) are importable:
    # the repo's source folders are not on the path, and the working directory is elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_")}
    env["PYTHONPATH"] = str(target)
    env["HUIZHI_DATABASE_URL"] = f"duckdb:///{tmp_path / 'wheel.duckdb'}"
    env["HUIZHI_LOAD_PLUGINS"] = ""  # built-ins only: the department plugins are other distributions
    code = (
        "import huizhi, huizhi_pages, sys; from huizhi.cli import main;"
        "assert huizhi.__file__.startswith(sys.argv[1]), huizhi.__file__;"
        "sys.exit(main(['plugins']))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(target)], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "builtin_pages" in result.stdout and "enabled" in result.stdout
    assert "store: duckdb" in result.stdout
