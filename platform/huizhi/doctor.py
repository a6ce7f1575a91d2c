"""``huizhi doctor``: is this deployment fit to start? A readable report, exit 1 on a problem.

Checks, in order (each one independent, so one report names every problem):

settings      huizhi.toml / HUIZHI_* parse (a bad file stops here: nothing else can be read)
access        ``[access]`` present and valid (without it everyone is denied)
database      the configured database answers (nothing is created or migrated)
migrations    the host's tables are at this installation's newest migration
queue         the task queue: on PostgreSQL procrastinate's tables are installed and a worker
              sent a heartbeat within ``[tasks] stalled_after`` (none: a warning), failed runs
              of the last day; on DuckDB the portal process runs the work itself
sign-in       Streamlit's ``[auth]`` secrets: ``redirect_uri``, ``cookie_secret``, and each
              provider's discovery document (``server_metadata_url``) answers within
              :data:`DISCOVERY_TIMEOUT` seconds with an issuer that is the URL it came from
plugins       every installed plugin loads in strict mode

Read-only: the doctor never writes to the database (a missing DuckDB file is reported, not
created). Output is English, for operators; the admin page 系统信息 shows the same findings
with Chinese labels (:data:`CHECK_LABELS`, :data:`STATUS_LABELS`).
"""

from __future__ import annotations

import json
import tomllib
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

OK, WARN, FAIL = "ok", "warn", "FAIL"
CHECK_LABELS = {
    "settings": "配置文件", "access": "角色映射", "connectors": "连接器", "database": "数据库连接",
    "migrations": "数据库结构版本", "sign-in": "统一身份认证", "plugins": "插件", "queue": "任务队列",
}  # fmt: skip
STATUS_LABELS = {OK: "正常", WARN: "注意", FAIL: "异常"}


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # OK, WARN or FAIL
    detail: str


def default_secrets_files(cwd: Path | None = None) -> list[Path]:
    """Where ``streamlit run`` looks for secrets when given none: the user's, then the project's
    (later files win)."""
    cwd = cwd or Path.cwd()
    return [Path.home() / ".streamlit" / "secrets.toml", cwd / ".streamlit" / "secrets.toml"]


def read_auth(files: Sequence[Path]) -> tuple[dict[str, Any] | None, list[Path], list[str]]:
    """The merged ``[auth]`` section of those of ``files`` that exist: ``(auth, read, errors)``."""
    auth: dict[str, Any] | None = None
    read, errors = [], []
    for path in files:
        if not path.is_file():
            continue
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            errors.append(f"{path}: {exc}")
            continue
        read.append(path)
        if isinstance(data.get("auth"), Mapping):
            auth = {**(auth or {}), **data["auth"]}
    return auth, read, errors


DISCOVERY_TIMEOUT = 3.0  # seconds: a provider that does not answer is reported, not waited for
WELL_KNOWN = "/.well-known/openid-configuration"


def discovery(url: str, timeout: float = DISCOVERY_TIMEOUT) -> dict[str, Any]:
    """The provider's discovery document, fetched as the portal's sign-in check fetches it
    (:func:`huizhi.signin.provider_reachable`); raises unless it has an issuer and endpoints."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the configured URL)
        document = json.loads(response.read())
    if not isinstance(document, dict) or "issuer" not in document or "authorization_endpoint" not in document:
        raise ValueError("not an OpenID discovery document (no issuer / authorization_endpoint)")
    return document


def issuer_problem(metadata_url: str, issuer: str) -> str | None:
    """OpenID Connect Discovery 1.0 §4.3: the document's ``issuer`` must be the URL it was
    fetched from, less ``/.well-known/openid-configuration``. A mismatch (a provider behind a
    proxy that reports its internal name, a realm URL with a typo) makes every sign-in fail at
    the ID token's ``iss`` check, after the person typed their password."""
    if not metadata_url.endswith(WELL_KNOWN):
        return f"{metadata_url} does not end in {WELL_KNOWN}"
    expected = metadata_url[: -len(WELL_KNOWN)]
    if issuer.rstrip("/") != expected.rstrip("/"):
        return f"the document's issuer {issuer} is not {expected} (the address it was fetched from)"
    return None


def check_signin(files: Sequence[Path]) -> list[Finding]:
    from huizhi.signin import configured_providers

    auth, read, errors = read_auth(files)
    findings = [Finding("sign-in", FAIL, f"unreadable secrets file {e}") for e in errors]
    if auth is None:
        where = ", ".join(str(p) for p in read) or "none of " + ", ".join(str(p) for p in files)
        return [*findings, Finding("sign-in", FAIL, f"no [auth] section in the Streamlit secrets (read: {where})")]
    source = ", ".join(str(p) for p in read)
    for key in ("redirect_uri", "cookie_secret"):
        if not auth.get(key):
            findings.append(Finding("sign-in", FAIL, f"[auth] {key} is missing ({source})"))
    redirect = str(auth.get("redirect_uri") or "")
    if redirect and not redirect.endswith("/oauth2callback"):
        findings.append(Finding("sign-in", FAIL, f"[auth] redirect_uri {redirect} must end in /oauth2callback"))
    providers = configured_providers(auth)
    if not providers:
        findings.append(Finding("sign-in", FAIL, "[auth] names no provider (client_id, server_metadata_url)"))
    for provider in providers:
        name = provider.name or "default"
        if not provider.metadata_url:
            findings.append(Finding("sign-in", FAIL, f"provider {name}: no server_metadata_url"))
            continue
        try:
            document = discovery(provider.metadata_url)
        except Exception as exc:
            findings.append(Finding("sign-in", FAIL, f"provider {name}: {provider.metadata_url} does not answer: {exc}"))
            continue
        problem = issuer_problem(provider.metadata_url, str(document["issuer"]))
        if problem:
            findings.append(Finding("sign-in", FAIL, f"provider {name}: {problem}"))
        else:
            findings.append(Finding("sign-in", OK, f"provider {name}: issuer {document['issuer']}"))
    if not any(f.status == FAIL for f in findings):
        findings.insert(0, Finding("sign-in", OK, f"[auth] from {source}"))
    return findings


def check_database(database_url: str, engine: Engine | None = None) -> list[Finding]:
    """``engine``: a running portal's own (the admin page), else a new one that is disposed."""
    from huizhi.db import create_db_engine
    from huizhi.health import engine_checks

    url = make_url(database_url)
    shown = url.render_as_string(hide_password=True)
    if engine is not None:
        return _database_findings(shown, engine_checks(engine))
    in_file = url.get_backend_name() == "duckdb" and url.database not in (None, "", ":memory:")
    if in_file and not Path(str(url.database)).is_file():
        return [Finding("database", FAIL, f"{shown}: the DuckDB file does not exist yet (run `huizhi migrate`)")]
    try:
        own = create_db_engine(database_url)
    except Exception as exc:
        return [Finding("database", FAIL, f"{shown}: {exc}")]
    try:
        return _database_findings(shown, engine_checks(own))
    finally:
        own.dispose()


def _database_findings(shown: str, checks: Mapping[str, Any]) -> list[Finding]:
    db = checks["database"]
    if not db["ok"]:
        return [Finding("database", FAIL, f"{shown}: {db['detail']} ({db['kind']}; see the log above)")]
    findings = [Finding("database", OK, f"{shown} answers")]
    mig = checks["migrations"]
    if mig["ok"]:
        findings.append(Finding("migrations", OK, f"at head {mig['head']}"))
    else:
        findings.append(Finding("migrations", FAIL, str(mig.get("detail"))))
    return findings


def check_queue(settings: Any, engine: Any = None) -> list[Finding]:
    """The task queue (see the module docstring); read-only, like every check here. ``engine``:
    the running host's (the admin page), else one made for the check."""
    import datetime as dt

    from sqlalchemy import text

    from huizhi.db import create_db_engine

    if settings.store_kind != "postgresql":
        return [Finding("queue", OK, "embedded store: background tasks run inside the portal process (no worker)")]
    own = engine is None
    engine = engine if engine is not None else create_db_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            installed = conn.execute(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")).scalar_one()
            if not installed:
                return [Finding("queue", FAIL, "procrastinate's tables are missing (run `huizhi migrate`)")]
            alive = conn.execute(text(
                "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval(secs => :s)"
            ), {"s": settings.tasks.stalled_after}).scalar_one()  # fmt: skip
            since = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=1)
            failed = conn.execute(text("SELECT count(*) FROM task_runs WHERE status = 'failed' AND created_at >= :t"),
                                  {"t": since}).scalar_one()  # fmt: skip
    except Exception as exc:
        return [Finding("queue", FAIL, f"could not read the queue: {type(exc).__name__}: {exc}")]
    finally:
        if own:
            engine.dispose()
    findings = [Finding("queue", OK, "procrastinate schema installed")]
    if alive:
        findings.append(Finding("queue", OK, f"{alive} worker(s) sent a heartbeat in the last "
                                             f"{settings.tasks.stalled_after:g} s"))  # fmt: skip
    else:
        findings.append(Finding("queue", WARN, "no worker seen in the last "
                                f"{settings.tasks.stalled_after:g} s: large uploads, reminders, syncs and exports "
                                "wait until `huizhi worker` runs"))  # fmt: skip
    if failed:
        findings.append(Finding("queue", WARN, f"{failed} task run(s) failed in the last 24 h (admin page 后台任务)"))
    return findings


def check_plugins(settings: Any) -> list[Finding]:
    from huizhi.plugins import PluginError, load_registry

    try:
        registry = load_registry(settings.load_plugins, strict=True, departments=settings.departments)
    except PluginError as exc:
        return [Finding("plugins", FAIL, str(exc))]
    names = ", ".join(sorted(p.name for p in registry.enabled()))
    return [Finding("plugins", OK, f"{len(registry.enabled())} load in strict mode: {names}")]


def check_loaded_plugins(registry: Any) -> list[Finding]:
    """A running portal's plugins as it loaded them (the admin page: nothing is loaded again)."""
    findings = [Finding("plugins", FAIL, f"{r.name}: {r.reason}") for r in registry.problems()]
    names = ", ".join(sorted(p.name for p in registry.enabled()))
    return findings or [Finding("plugins", OK, f"{len(registry.enabled())} enabled: {names}")]


def run_checks(
    env: Mapping[str, str] | None = None, secrets_files: Sequence[Path] | None = None, *, host: Any = None
) -> list[Finding]:
    """Every check, in the order of the module's table. ``host``: a running portal's host (the
    admin page); its settings, engine and plugins are checked instead of loading new ones."""
    from huizhi.access import check_access_config
    from huizhi.config import load_settings

    try:
        settings = host.settings if host is not None else load_settings(env)
    except Exception as exc:
        return [Finding("settings", FAIL, f"{type(exc).__name__}: {exc}")]
    where = str(settings.config_file) if settings.config_file else "no huizhi.toml (defaults and HUIZHI_* only)"
    findings = [Finding("settings", OK, where)]
    access = check_access_config(settings.access, settings.departments)
    findings += [Finding("access", FAIL, p) for p in access] or [
        Finding("access", OK, f"{len(settings.access.get('rules', ()))} rules")
    ]
    from huizhi.host import check_connector_config

    connectors = check_connector_config(settings.connectors, settings.departments, settings.connector_env)
    findings += [Finding("connectors", FAIL, p) for p in connectors] or [
        Finding("connectors", OK, f"{len(settings.connectors)} configured")
    ]
    findings += check_database(settings.database_url, host.engine if host is not None else None)
    if all(f.status != FAIL for f in findings if f.check in ("database", "migrations")):
        findings += check_queue(settings, host.engine if host is not None else None)
    findings += check_signin(list(secrets_files) if secrets_files else default_secrets_files())
    findings += check_loaded_plugins(host.registry) if host is not None else check_plugins(settings)
    return findings


def report(findings: Sequence[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    lines = [f"{f.status:<4}  {f.check:<{width}}  {f.detail}" for f in findings]
    failed = sum(f.status == FAIL for f in findings)
    lines.append("")
    lines.append(f"{failed} problem(s) found" if failed else "all checks passed")
    return "\n".join(lines)
