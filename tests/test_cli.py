"""The huizhi command, run as a deployment or a plugin author would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from plugin_fixtures import BROKEN_IMPORT, install_distribution

from huizhi.demo import write_demo_config

ROOT = Path(__file__).resolve().parents[1]


def huizhi(*args: str, tmp_path: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_")}
    env["HUIZHI_DATABASE_URL"] = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    if extra_path:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.run([sys.executable, "-m", "huizhi.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def test_plugins_lists_every_plugin_and_the_store(tmp_path):
    result = huizhi("plugins", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("builtin_pages", "builtin_connectors", "sensing", "citymgmt"):
        assert name in result.stdout
    assert "区经济和信息化局" in result.stdout and "store: duckdb" in result.stdout


def test_check_fails_on_a_broken_plugin_and_names_it(tmp_path):
    write_demo_config(tmp_path / "huizhi.toml")  # a role mapping, so only the plugin can fail the check
    assert huizhi("check", tmp_path=tmp_path).returncode == 0
    site = tmp_path / "site"
    install_distribution(site, "huizhi-broken", "huizhi_broken_plugin", BROKEN_IMPORT, entry_name="broken")
    sys.path.remove(str(site))
    result = huizhi("check", tmp_path=tmp_path, extra_path=site)
    assert result.returncode == 1
    assert "broken" in result.stderr and "huizhi-gis-tools" in result.stderr
    listed = huizhi("plugins", tmp_path=tmp_path, extra_path=site)
    assert listed.returncode == 1 and "disabled" in listed.stdout


def test_seed_loads_once(tmp_path):
    first = huizhi("seed", "--scale", "0.01", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "sensing_devices:" in first.stdout and "city_cases:" in first.stdout
    again = huizhi("seed", "--scale", "0.01", tmp_path=tmp_path)
    assert "nothing to seed" in again.stdout


def test_docs_check_and_scaffold(tmp_path):
    docs = subprocess.run([sys.executable, "-m", "huizhi.cli", "docs", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert docs.returncode == 0, docs.stderr
    made = huizhi("new-plugin", "water", "--department", "swj", "--title", "水务台账", "--directory", str(tmp_path / "p"),
                  tmp_path=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "p" / "water" / "huizhi_water" / "plugin.py").is_file()
    bad = huizhi("new-plugin", "water", "--department", "nowhere", tmp_path=tmp_path)
    assert bad.returncode == 2 and "unknown department id 'nowhere'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_check_fails_without_a_role_mapping_and_says_where_to_read(tmp_path):
    result = huizhi("check", tmp_path=tmp_path)  # no huizhi.toml: deny everyone
    assert result.returncode == 1
    assert "no [access] section" in result.stderr and "docs/sign-in.md" in result.stderr
    write_demo_config(tmp_path / "huizhi.toml")
    ok = huizhi("check", tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "access rules" in ok.stdout


MISSPELT = """
from huizhi import hookimpl
from huizhi.specs import PluginInfo

@hookimpl
def huizhi_plugin_info():
    return PluginInfo(name="typo", title="拼错的插件", department="swj", version="0.1.0", host_api=">=1.0,<2")

@hookimpl
def huizhi_tile():
    return []
"""


def test_check_fails_on_a_misspelt_hook_naming_plugin_and_hook(tmp_path):
    write_demo_config(tmp_path / "huizhi.toml")
    site = tmp_path / "site"
    install_distribution(site, "huizhi-typo", "huizhi_typo_plugin", MISSPELT, entry_name="typo")
    sys.path.remove(str(site))
    result = huizhi("check", tmp_path=tmp_path, extra_path=site)
    assert result.returncode == 1
    assert "typo" in result.stderr and "'huizhi_tile'" in result.stderr and "huizhi_tiles" in result.stderr
    listed = huizhi("plugins", tmp_path=tmp_path, extra_path=site)
    assert listed.returncode == 1 and "huizhi_tile" in listed.stdout
