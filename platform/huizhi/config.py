"""Settings: environment variables over the config file over defaults.

| setting | environment | huizhi.toml | default |
| --- | --- | --- | --- |
| database URL | ``HUIZHI_DATABASE_URL`` | ``[database] url`` | DuckDB file ``<data_dir>/huizhi.duckdb`` |
| data directory | ``HUIZHI_DATA_DIR`` | ``data_dir`` | ``./var`` |
| plugins to load | ``HUIZHI_LOAD_PLUGINS`` (comma list) | ``[plugins] load`` | all installed |
| strict mode | ``HUIZHI_STRICT=1`` | ``[plugins] strict`` | off |
| role mapping | — | ``[access]`` | :data:`DEFAULT_ACCESS` (the demo mapping) |
| config file | ``HUIZHI_CONFIG`` | — | ``./huizhi.toml`` when present |

Settings are a plain value built by :func:`load_settings`; nothing reads the environment later,
so tests build as many independent settings as they like.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Demo role mapping: which values of which claim grant which role in which department. A real
# deployment replaces this in huizhi.toml ([access]); stable group ids, not display names.
DEFAULT_ACCESS: dict[str, Any] = {
    "claim": "groups",
    "contact": "区智慧办（区智慧城市领导小组办公室）平台管理员",
    "rules": [
        {"value": "daxing-leaders", "role": "leader"},
        {"value": "huizhi-platform-admins", "role": "platform_admin"},
        *(
            rule
            for dept in (
                "jxj",
                "gaj",
                "zfw",
                "cgw",
                "cgzx",
                "sthj",
                "swj",
                "zwfw",
                "wjw",
                "jw",
                "jtj",
                "yjj",
                "mzj",
                "xf",
            )
            for rule in (
                {"value": f"dept-{dept}-staff", "role": "staff", "department": dept},
                {"value": f"dept-{dept}-ledger-admin", "role": "ledger_admin", "department": dept},
            )
        ),
    ],
}


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    load_plugins: tuple[str, ...] | None = None
    strict: bool = False
    access: Mapping[str, Any] = field(default_factory=lambda: DEFAULT_ACCESS)
    connectors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    signin_labels: Mapping[str, str] = field(default_factory=dict)  # [signin.labels]: provider → button text
    config_file: Path | None = None

    @property
    def store_kind(self) -> str:
        """'duckdb' (embedded, one process) or 'postgresql' (production), from the URL."""
        return self.database_url.split(":", 1)[0].split("+", 1)[0]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``env`` (default: ``os.environ``), the config file and ``overrides``."""
    env = os.environ if env is None else env
    config_path = Path(env["HUIZHI_CONFIG"]) if env.get("HUIZHI_CONFIG") else Path("huizhi.toml")
    config: dict[str, Any] = {}
    if config_path.is_file():
        with config_path.open("rb") as fh:
            config = tomllib.load(fh)
    elif env.get("HUIZHI_CONFIG"):
        raise FileNotFoundError(f"HUIZHI_CONFIG points to {config_path}, which does not exist")

    data_dir = Path(env.get("HUIZHI_DATA_DIR") or config.get("data_dir") or "var").resolve()
    database_url = (
        env.get("HUIZHI_DATABASE_URL")
        or config.get("database", {}).get("url")
        or f"duckdb:///{data_dir / 'huizhi.duckdb'}"
    )
    plugins_cfg = config.get("plugins", {})
    load = env.get("HUIZHI_LOAD_PLUGINS")
    load_plugins: tuple[str, ...] | None
    if load is not None:
        load_plugins = tuple(p.strip() for p in load.split(",") if p.strip())
    elif "load" in plugins_cfg:
        load_plugins = tuple(plugins_cfg["load"])
    else:
        load_plugins = None
    strict = (
        _truthy(env.get("HUIZHI_STRICT"))
        if "HUIZHI_STRICT" in env
        else bool(plugins_cfg.get("strict", False))
    )
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "load_plugins": load_plugins,
        "strict": strict,
        "access": config.get("access", DEFAULT_ACCESS),
        "connectors": config.get("connectors", {}),
        "signin_labels": config.get("signin", {}).get("labels", {}),
        "config_file": config_path if config_path.is_file() else None,
    }
    values.update(overrides)
    return Settings(**values)
