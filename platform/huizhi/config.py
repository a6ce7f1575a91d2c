"""Settings: environment variables over the config file over defaults.

| setting | environment | huizhi.toml | default |
| --- | --- | --- | --- |
| database URL | ``HUIZHI_DATABASE_URL`` | ``[database] url`` | DuckDB file ``<data_dir>/huizhi.duckdb`` |
| migrate on start | ``HUIZHI_MIGRATE=0`` (off) | ``[database] migrate`` | on |
| pool size (server) | ``HUIZHI_DB_POOL_SIZE`` | ``[database] pool_size`` | 5 |
| pool overflow (server) | ``HUIZHI_DB_MAX_OVERFLOW`` | ``[database] max_overflow`` | 5 |
| pool checkout timeout, s | ``HUIZHI_DB_POOL_TIMEOUT`` | ``[database] pool_timeout`` | 30 |
| connect timeout, s (server) | ``HUIZHI_DB_CONNECT_TIMEOUT`` | ``[database] connect_timeout`` | 5 |
| log format | ``HUIZHI_LOG_FORMAT`` (``text`` / ``json``) | ``[logging] format`` | ``text`` |
| data directory | ``HUIZHI_DATA_DIR`` | ``data_dir`` | ``./var`` |
| plugins to load | ``HUIZHI_LOAD_PLUGINS`` (comma list) | ``[plugins] load`` | all installed |
| strict mode | ``HUIZHI_STRICT=1`` | ``[plugins] strict`` | off |
| declarative plugin folder | ``HUIZHI_DECLARATIVE_DIR`` | ``[plugins] declarative_dir`` (relative: to the file) | none |
| role mapping | — | ``[access]`` | none: nobody has a role (deny by default) |
| departments | — | ``[[departments]]`` (``id``, ``name``) | Daxing's units (:data:`huizhi.district.DAXING`) |
| config file | ``HUIZHI_CONFIG`` | — | ``./huizhi.toml`` when present |
| upload size sent to the task queue, bytes | ``HUIZHI_TASK_UPLOAD_BYTES`` | ``[tasks] upload_bytes`` | 2 MiB |
| task retries after the first attempt | ``HUIZHI_TASK_RETRIES`` | ``[tasks] retries`` | 3 |
| retry backoff base, s (base, base², base³ …) | ``HUIZHI_TASK_RETRY_WAIT`` | ``[tasks] retry_wait`` | 4 |
| worker heartbeat, s | ``HUIZHI_TASK_HEARTBEAT`` | ``[tasks] heartbeat`` | 10 |
| stalled job after, s without heartbeat | ``HUIZHI_TASK_STALLED_AFTER`` | ``[tasks] stalled_after`` | 60 |
| jobs at once per worker | ``HUIZHI_TASK_CONCURRENCY`` | ``[tasks] concurrency`` | 1 |
| reminders / cockpit export schedule (cron, UTC) | — | ``[tasks] reminder_cron`` / ``export_cron`` | 08:30 / 07:00 Beijing |
| connectors | ``<KEY>_env = "VAR"`` in a section | ``[connectors.<id>]`` | none |
| connector secrets | ``HUIZHI_SECRETS`` (file) | — | Streamlit's ``./.streamlit/secrets.toml``, ``~/.streamlit/secrets.toml`` |

A connector's secrets never belong in code or in the repository: put them in a Streamlit secrets
file under the same ``[connectors.<id>]`` heading (its keys win over huizhi.toml's), or name an
environment variable, ``client_secret_env = "JXJ_API_SECRET"``, which the host reads when the
settings are loaded (:func:`connector_config`).

Settings are a plain value built by :func:`load_settings`; nothing reads the environment later,
so tests build as many independent settings as they like.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from huizhi.db import CONNECT_TIMEOUT, MAX_OVERFLOW, POOL_SIZE, POOL_TIMEOUT
from huizhi.district import DAXING, Departments

DEPARTMENT_ID = re.compile(r"[a-z][a-z0-9_-]*")

# No role mapping means nobody is granted anything (deny by default). The demo's mapping lives in
# huizhi.demo (demo_access) and reaches the portal through the demo's own config file.
NO_ACCESS: Mapping[str, Any] = MappingProxyType({})


def freeze(value: Any) -> Any:
    """A read-only copy of parsed TOML: tables become mappings that cannot be changed, arrays
    tuples. Settings are shared by every session of a process; nothing may edit them in place."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class TaskSettings:
    """``[tasks]`` in huizhi.toml / ``HUIZHI_TASK_*`` (see :mod:`huizhi.config`)."""

    upload_bytes: int = 2 * 1024 * 1024  # uploads from this size go to the queue; smaller run on the page
    retries: int = 3  # after the first attempt
    retry_wait: float = 4.0  # exponential backoff base, seconds: 4, 16, 64
    heartbeat: float = 10.0  # worker heartbeat interval, seconds
    stalled_after: float = 60.0  # a job whose worker sent no heartbeat for this long is retried
    concurrency: int = 1  # jobs at once per worker process (or threads in process on DuckDB)
    reminder_cron: str = "30 0 * * *"  # UTC: 08:30 Beijing
    export_cron: str = "0 23 * * *"  # UTC: 07:00 Beijing



def _departments(config: Mapping[str, Any]) -> Departments:
    """``[[departments]]`` (each ``id`` and ``name``) when present, else Daxing's list."""
    tables = config.get("departments")
    if tables is None:
        return DAXING
    if not isinstance(tables, list) or not tables:
        raise ValueError("[[departments]] in huizhi.toml must be a non-empty array of tables with id and name")
    pairs = []
    for n, table in enumerate(tables, 1):
        dept_id, name = (table.get("id"), table.get("name")) if isinstance(table, Mapping) else (None, None)
        if not isinstance(dept_id, str) or not DEPARTMENT_ID.fullmatch(dept_id) or not isinstance(name, str) or not name:
            raise ValueError(
                f"[[departments]] entry {n}: needs an ASCII id (lower-case letters, digits, _ or -) "
                f"and a name, got id={dept_id!r} name={name!r}"
            )
        pairs.append((dept_id, name))
    return Departments.of(pairs)


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    load_plugins: tuple[str, ...] | None = None
    strict: bool = False
    access: Mapping[str, Any] = field(default_factory=lambda: NO_ACCESS)  # [access]; empty: nobody has a role
    departments: Departments = DAXING  # [[departments]]
    connectors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # the environment variables the connectors' ``*_env`` keys name, read with the settings
    connector_env: Mapping[str, str] = field(default_factory=dict)
    signin_labels: Mapping[str, str] = field(default_factory=dict)  # [signin.labels]: provider → button text
    config_file: Path | None = None
    # a folder of declarative plugin files (*.toml, see huizhi.declarative); None: no such plugins
    declarative_dir: Path | None = None
    migrate: bool = True  # upgrade the schema on start; off: refuse an old schema (SchemaOutdated)
    pool_size: int = POOL_SIZE  # [database] pool settings; a database server only
    max_overflow: int = MAX_OVERFLOW
    pool_timeout: float = POOL_TIMEOUT  # seconds a checkout waits before StoreBusy
    tasks: TaskSettings = field(default_factory=TaskSettings)  # [tasks]: background work (huizhi.tasks)
    connect_timeout: float = CONNECT_TIMEOUT  # seconds a new connection may take (server unreachable)
    log_format: str = "text"  # [logging] format: text or json (huizhi.logs)

    @property
    def pool_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`huizhi.db.create_db_engine`."""
        return {
            "pool_size": self.pool_size, "max_overflow": self.max_overflow, "pool_timeout": self.pool_timeout,
            "connect_timeout": self.connect_timeout,
        }  # fmt: skip

    @property
    def store_kind(self) -> str:
        """'duckdb' (embedded, one process) or 'postgresql' (production), from the URL."""
        return self.database_url.split(":", 1)[0].split("+", 1)[0]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _number(env: Mapping[str, str], name: str, database: Mapping[str, Any], key: str, default: Any, kind: type,
            minimum: int = 0) -> Any:
    """``name`` from the environment, else ``[database] key``, else ``default``, as ``kind`` >= ``minimum``."""
    raw = env[name] if env.get(name) else database.get(key, default)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} / [database] {key} must be a number, got {raw!r}") from None
    if value < minimum or isinstance(raw, bool):
        raise ValueError(f"{name} / [database] {key} must be a number >= {minimum}, got {raw!r}")
    return value


def _task_settings(env: Mapping[str, str], tasks: Mapping[str, Any]) -> TaskSettings:
    """``[tasks]`` with ``HUIZHI_TASK_<KEY>`` over it; unknown keys are an error (a typo must not
    silently keep a default)."""
    defaults = TaskSettings()
    unknown = set(tasks) - {f.name for f in dataclasses.fields(TaskSettings)}
    if unknown:
        raise ValueError(f"[tasks] has unknown keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(TaskSettings):
        default = getattr(defaults, f.name)
        raw = env.get(f"HUIZHI_TASK_{f.name.upper()}") or tasks.get(f.name, default)
        if isinstance(default, str):
            values[f.name] = str(raw)
            continue
        try:
            value = type(default)(raw)
        except (TypeError, ValueError):
            raise ValueError(f"HUIZHI_TASK_{f.name.upper()} / [tasks] {f.name} must be a number, got {raw!r}") from None
        if value < 0 or isinstance(raw, bool):
            raise ValueError(f"HUIZHI_TASK_{f.name.upper()} / [tasks] {f.name} must be >= 0, got {raw!r}")
        values[f.name] = value
    return TaskSettings(**values)


def _log_format(env: Mapping[str, str], config: Mapping[str, Any]) -> str:
    raw = env.get("HUIZHI_LOG_FORMAT") or config.get("logging", {}).get("format") or "text"
    value = str(raw).strip().lower()
    if value not in {"text", "json"}:
        raise ValueError(f"HUIZHI_LOG_FORMAT / [logging] format must be 'text' or 'json', got {raw!r}")
    return value


ENV_SUFFIX = "_env"


def _secrets_connectors(env: Mapping[str, str]) -> dict[str, Any]:
    """``[connectors.*]`` from the Streamlit secrets file(s): ``HUIZHI_SECRETS``, else the
    places Streamlit itself reads (the user's, then the project's, which wins)."""
    if env.get("HUIZHI_SECRETS"):
        paths = [Path(env["HUIZHI_SECRETS"])]
    else:
        paths = [Path.home() / ".streamlit" / "secrets.toml", Path(".streamlit") / "secrets.toml"]
    merged: dict[str, Any] = {}
    for path in paths:
        if path.is_file():
            with path.open("rb") as fh:
                for connector_id, table in tomllib.load(fh).get("connectors", {}).items():
                    merged.setdefault(connector_id, {}).update(table)
    return merged


def _connectors(config: Mapping[str, Any], env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """huizhi.toml's ``[connectors.*]`` with the secrets file's keys over them, and the values of
    the environment variables their ``*_env`` keys name."""
    connectors: dict[str, Any] = {cid: dict(table) for cid, table in config.get("connectors", {}).items()}
    for connector_id, table in _secrets_connectors(env).items():
        connectors.setdefault(connector_id, {}).update(table)
    names = {
        value for table in connectors.values() for key, value in table.items()
        if key.endswith(ENV_SUFFIX) and isinstance(value, str)
    }  # fmt: skip
    return connectors, {name: env[name] for name in names if name in env}


def connector_config(connector_id: str, config: Mapping[str, Any], connector_env: Mapping[str, str]) -> dict[str, Any]:
    """One connector's configuration with every ``<key>_env = "VAR"`` replaced by ``<key>`` set
    to that variable's value. Raises ValueError naming the variable when it is not set."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key.endswith(ENV_SUFFIX) and isinstance(value, str):
            if value not in connector_env:
                raise ValueError(
                    f"[connectors.{connector_id}] {key} names the environment variable {value}, which is not set"
                )
            out[key.removesuffix(ENV_SUFFIX)] = connector_env[value]
        else:
            out[key] = value
    return out


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
    database = config.get("database", {})
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
    declarative_dir: Path | None = None
    if env.get("HUIZHI_DECLARATIVE_DIR"):
        declarative_dir = Path(env["HUIZHI_DECLARATIVE_DIR"]).resolve()
    elif plugins_cfg.get("declarative_dir"):
        # relative to the config file, so a deployment's folder moves with its huizhi.toml
        declarative_dir = (config_path.parent / str(plugins_cfg["declarative_dir"])).resolve()
    connectors, connector_env = _connectors(config, env)
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "load_plugins": load_plugins,
        "strict": strict,
        "access": freeze(config.get("access", {})),
        "departments": _departments(config),
        "connectors": connectors,
        "connector_env": connector_env,
        "signin_labels": config.get("signin", {}).get("labels", {}),
        "config_file": config_path if config_path.is_file() else None,
        "declarative_dir": declarative_dir,
        "migrate": _truthy(env["HUIZHI_MIGRATE"]) if env.get("HUIZHI_MIGRATE") else bool(database.get("migrate", True)),
        "pool_size": _number(env, "HUIZHI_DB_POOL_SIZE", database, "pool_size", POOL_SIZE, int, 1),  # 0: unbounded
        "max_overflow": _number(env, "HUIZHI_DB_MAX_OVERFLOW", database, "max_overflow", MAX_OVERFLOW, int),
        "pool_timeout": _number(env, "HUIZHI_DB_POOL_TIMEOUT", database, "pool_timeout", POOL_TIMEOUT, float),
        "connect_timeout": _number(
            env, "HUIZHI_DB_CONNECT_TIMEOUT", database, "connect_timeout", CONNECT_TIMEOUT, float, 1
        ),
        "log_format": _log_format(env, config),
    }
    values["tasks"] = _task_settings(env, config.get("tasks", {}))
    values.update(overrides)
    values["access"] = freeze(values["access"])  # overrides too: tests pass plain dicts
    return Settings(**values)
