"""The local sign-in stack: an OpenID provider with demo identities, and the portal behind it.

``huizhi demo`` calls :func:`run_demo`. The browser tests start the very same processes through
:func:`oidc_provider` and :func:`portal`, so the demo, the tests and production all sign in through
Streamlit's ``st.login`` against a real OpenID Connect provider: there is no bypass switch.

The provider is ``oidc-provider-mock`` (0.3.4, the last release for Python 3.11). How it behaves,
read from its source:

* It accepts any ``client_id`` / ``client_secret`` and any redirect URI unless started with
  ``--require-registration``; we do not require registration, so the portal's secrets only have
  to be self-consistent.
* Identities are given with ``--user-claims '{"sub": ..., ...}'`` (repeatable). They show up as
  one-click buttons on its authorization page, which also has a ``sub`` text box ("Authorize")
  and a "Deny" button; an unknown ``sub`` typed into the box gets the claims ``{"email": sub}``.
  ``PUT /users/<sub>`` with a JSON body replaces (never merges) one identity's claims at run time.
* Custom claims (``groups``, ``department``, ``title``) are always put in the ID token; standard
  claims (``name``, ``email``) only for the scopes asked, and Streamlit asks for
  ``openid email profile``. All of them end up in ``st.user``.
* ``iss`` is the URL the client used to reach it, so the portal must fetch the discovery document
  from the same ``http://127.0.0.1:PORT`` it will see in tokens.
* Its signing key is generated at start-up and lives only in memory, so is everything else.

Everything listens on 127.0.0.1 only; the host in ``redirect_uri`` and the one in the browser's
URL must be the same string, or the callback arrives without a session (see
shared/notes/streamlit-oidc-browser-pitfalls.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huizhi.district import Departments
    from huizhi.specs import DemoPerson

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_PORTAL_PORT = 8501
DEFAULT_OIDC_PORT = 9400

# ----------------------------------------------------------------------------------------------
# Demo identities


@dataclass(frozen=True)
class DemoIdentity:
    """One person the demo provider can sign in; :meth:`claims` is what ends up in ``st.user``."""

    sub: str
    name: str
    title: str  # 职务, shown in the identity table and as a claim
    email: str
    groups: tuple[str, ...] = ()
    department: str | None = None  # a department id from huizhi.district, when the person has one
    expect: str = ""  # what this identity is meant to show, in Chinese (docs and the table)

    def claims(self) -> dict[str, object]:
        claims: dict[str, object] = {
            "sub": self.sub,
            "name": self.name,
            "preferred_username": self.sub,
            "email": self.email,
            "email_verified": True,
            "title": self.title,
            "groups": list(self.groups),
        }
        if self.department is not None:
            claims["department"] = self.department
        return claims


DEMO_IDENTITIES: tuple[DemoIdentity, ...] = (
    DemoIdentity(
        sub="leader",
        name="王志远",
        title="区长",
        email="wang.zhiyuan@daxing.example",
        groups=("daxing-leaders",),
        expect="区领导：领导驾驶舱，各部门只读页面",
    ),
    DemoIdentity(
        sub="staff-jxj",
        name="李晓梅",
        title="区经济和信息化局 科员",
        email="li.xiaomei@jxj.daxing.example",
        groups=("dept-jxj-staff",),
        department="jxj",
        expect="部门人员：区经济和信息化局的页面与台账",
    ),
    DemoIdentity(
        sub="staff-cgw",
        name="张建国",
        title="区城市管理委 科员",
        email="zhang.jianguo@cgw.daxing.example",
        groups=("dept-cgw-staff",),
        department="cgw",
        expect="部门人员：区城市管理委的页面与台账",
    ),
    DemoIdentity(
        sub="admin-jxj",
        name="陈静",
        title="区经济和信息化局 台账管理员",
        email="chen.jing@jxj.daxing.example",
        groups=("dept-jxj-staff", "dept-jxj-ledger-admin"),
        department="jxj",
        expect="台账管理员：上传、提交、回滚区经济和信息化局的台账",
    ),
    DemoIdentity(
        sub="platform-admin",
        name="刘洋",
        title="慧治平台管理员",
        email="liu.yang@daxing.example",
        groups=("huizhi-platform-admins",),
        expect="平台管理员：插件状态、角色映射、审计日志",
    ),
    DemoIdentity(
        sub="visitor",
        name="赵敏",
        title="访客",
        email="zhao.min@visitor.example",
        groups=(),
        expect="未映射身份：只看到“无访问权限”页面",
    ),
)


# The departments whose staff and ledger admins the demo maps (the demo identities use jxj and cgw;
# the others let an admin try the simulator on any department with demo data).
_DEMO_DEPARTMENTS = (
    "jxj", "gaj", "zfw", "cgw", "cgzx", "sthj", "swj", "zwfw", "wjw", "jw", "jtj", "yjj", "mzj", "xf", "txb",
)  # fmt: skip


def demo_access(departments: Iterable[str] = ()) -> dict[str, Any]:
    """The demo's role mapping (an ``[access]`` section): which ``groups`` values grant which
    role in which department; ``departments`` adds those of plugins' demo people. Only the demo
    and the tests use it; a deployment writes its own in huizhi.toml. A new dict each call, so no
    caller can change another's."""
    mapped = [*_DEMO_DEPARTMENTS, *(d for d in dict.fromkeys(departments) if d not in _DEMO_DEPARTMENTS)]
    return {
        "claim": "groups",
        "contact": "区智慧办（区智慧城市领导小组办公室）平台管理员",
        "rules": [
            {"value": "daxing-leaders", "role": "leader"},
            {"value": "huizhi-platform-admins", "role": "platform_admin"},
            *(
                rule
                for dept in mapped
                for rule in (
                    {"value": f"dept-{dept}-staff", "role": "staff", "department": dept},
                    {"value": f"dept-{dept}-ledger-admin", "role": "ledger_admin", "department": dept},
                )
            ),
        ],
    }


def demo_config_toml(base: Mapping[str, Any] | None = None, departments: Iterable[str] = ()) -> str:
    """A huizhi.toml for the demo: ``base``'s database and data directory (when given, e.g.
    from the user's own settings), its ``declarative_dir`` (the folder of declarative plugin
    files: the demo passes the checkout's plugins/declarative) and the demo's ``[access]`` mapping
    (see :func:`demo_access`; ``departments`` are the extra ones plugins' demo people belong to)."""

    def q(value: object) -> str:
        return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML string

    base = base or {}
    lines = ["# Written by huizhi.demo: the demo's own configuration, regenerated at every start."]
    if base.get("data_dir"):
        lines.append(f"data_dir = {q(base['data_dir'])}")
    if base.get("database_url"):
        lines += ["", "[database]", f"url = {q(base['database_url'])}"]
    if base.get("declarative_dir"):
        lines += ["", "[plugins]", f"declarative_dir = {q(base['declarative_dir'])}"]
    access = demo_access(departments)
    lines += ["", "[access]", f"claim = {q(access['claim'])}", f"contact = {q(access['contact'])}"]
    for rule in access["rules"]:
        lines += ["", "[[access.rules]]", *(f"{key} = {q(value)}" for key, value in rule.items())]
    return "\n".join(lines) + "\n"


def write_demo_config(path: Path, base: Mapping[str, Any] | None = None, departments: Iterable[str] = ()) -> Path:
    """Write :func:`demo_config_toml` to ``path``; returns ``path`` (point HUIZHI_CONFIG at it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(demo_config_toml(base, departments), encoding="utf-8")
    return path


def plugin_demo_identities(people: Iterable[tuple[DemoPerson, str]], departments: Departments) -> list[DemoIdentity]:
    """The plugins' demo people (``Registry.demo_people``) as demo identities, in the demo's
    group scheme; a ``sub`` already taken (by the demo or another plugin) is skipped, logged."""
    taken = {identity.sub for identity in DEMO_IDENTITIES}
    out = []
    for person, plugin in people:
        if person.sub in taken:
            log.warning("plugin %s: demo person %r skipped, the demo already has that sub", plugin, person.sub)
            continue
        taken.add(person.sub)
        dept_name = departments.name(person.department)
        admin = person.role == "ledger_admin"
        groups = (f"dept-{person.department}-staff", *([f"dept-{person.department}-ledger-admin"] if admin else []))
        role_label = "台账管理员" if admin else "部门人员"
        out.append(
            DemoIdentity(
                sub=person.sub,
                name=person.name,
                title=person.title or f"{dept_name} {'台账管理员' if admin else '科员'}",
                email=f"{person.sub}@{person.department}.daxing.example",
                groups=groups,
                department=person.department,
                expect=f"{role_label}：{dept_name}的页面与台账（插件 {plugin}）",
            )
        )
    return out


def demo_identity(sub: str) -> DemoIdentity:
    """The demo identity with this ``sub``; KeyError naming it when there is none."""
    for identity in DEMO_IDENTITIES:
        if identity.sub == sub:
            return identity
    raise KeyError(f"no demo identity with sub {sub!r}")


# ----------------------------------------------------------------------------------------------
# Small process and network helpers


class StartupError(RuntimeError):
    """A child process did not become ready; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for tests; tiny race accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# Loopback requests must never go through a proxy configured in the environment.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET ``url`` without any proxy; returns (status, body); HTTP errors are returned, not raised."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    # httpx (authlib underneath st.login) honours HTTP(S)_PROXY: keep loopback direct.
    no_proxy = {p.strip() for p in (env.get("NO_PROXY") or env.get("no_proxy") or "").split(",") if p.strip()}
    no_proxy |= {LOOPBACK, "localhost", "::1"}
    env["NO_PROXY"] = env["no_proxy"] = ",".join(sorted(no_proxy))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the child when its parent dies (a killed test run or demo leaves no
    provider or portal holding the ports). No-op elsewhere."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return "(output went to the terminal)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(empty log)"


@contextlib.contextmanager
def _child(
    name: str,
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    cwd: Path | None,
    log_file: Path | None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` for the duration of the block; terminate it (then kill) on exit."""
    log: IO[bytes] | None = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_file, "ab")  # noqa: SIM115 - closed in finally
    try:
        process = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log is not None else None,
            env=_child_env(env),
            cwd=cwd,
            preexec_fn=_die_with_parent if _PRCTL is not None else None,
        )
        try:
            yield process
        finally:
            stop_process(process, name)
    finally:
        if log is not None:
            log.close()


def stop_process(process: subprocess.Popen[bytes], name: str = "process", timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; safe to call on a process that already ended."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"[huizhi] {name} (pid {process.pid}) ignored SIGTERM; killing it", file=sys.stderr)
        process.kill()
        process.wait(5)


def _wait_ready(
    name: str,
    url: str,
    process: subprocess.Popen[bytes],
    log_file: Path | None,
    timeout: float,
    ok: bytes | None = None,
) -> float:
    """Poll ``url`` until it answers 200 (and ``ok`` is in the body); returns seconds waited."""
    start = time.monotonic()
    last = "no answer yet"
    while True:
        code = process.poll()
        if code is not None:
            raise StartupError(f"{name} exited with code {code} before it was ready.\n{_tail(log_file)}")
        try:
            status, body = http_get(url, timeout=1.0)
            if status == 200 and (ok is None or ok in body):
                return time.monotonic() - start
            last = f"HTTP {status}"
        except OSError as error:
            last = str(error)
        if time.monotonic() - start > timeout:
            raise StartupError(
                f"{name} not ready after {timeout:.0f} s at {url} ({last}).\n{_tail(log_file)}"
            )
        time.sleep(0.1)


# ----------------------------------------------------------------------------------------------
# The OpenID provider


@dataclass
class Provider:
    """A running ``oidc-provider-mock`` on loopback."""

    port: int
    process: subprocess.Popen[bytes]
    log_file: Path | None
    startup_seconds: float

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/oauth2/authorize"

    def set_user(self, sub: str, claims: Mapping[str, object]) -> None:
        """Replace the claims of ``sub`` (created if unknown); takes effect at its next sign-in."""
        body = {k: v for k, v in claims.items() if k != "sub"}
        request = urllib.request.Request(
            f"{self.base_url}/users/{urllib.parse.quote(sub, safe='')}",
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with _NO_PROXY_OPENER.open(request, timeout=5) as response:
            if response.status != 204:
                raise RuntimeError(f"PUT /users/{sub} answered HTTP {response.status}")


@contextlib.contextmanager
def oidc_provider(
    port: int = DEFAULT_OIDC_PORT,
    identities: Sequence[DemoIdentity] = DEMO_IDENTITIES,
    *,
    token_max_age: int | None = None,
    log_file: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[Provider]:
    """Run ``oidc-provider-mock`` on 127.0.0.1:``port`` with ``identities`` for the block.

    ``token_max_age`` (seconds) shortens ID and access token lifetime (default one hour), for
    expiry tests. Raises :class:`StartupError` (with the log's tail) when it does not come up.
    """
    if port_in_use(port):
        raise StartupError(f"port {port} on {LOOPBACK} is already in use (is another demo running?)")
    import importlib.util

    if importlib.util.find_spec("oidc_provider_mock") is None:
        raise StartupError(
            "oidc-provider-mock is not installed: it is a demo and test tool, in the 'demo' extra "
            "(pip install 'huizhi[demo]', or ./dev setup in a checkout)"
        )
    cmd = [sys.executable, "-m", "oidc_provider_mock", "--host", LOOPBACK, "--port", str(port)]
    for identity in identities:
        # ensure_ascii keeps the command line pure ASCII whatever the locale
        cmd += ["--user-claims", json.dumps(identity.claims())]
    if token_max_age is not None:
        cmd += ["--token-max-age", str(int(token_max_age))]
    with _child("oidc-provider-mock", cmd, env={"NO_COLOR": "1"}, cwd=None, log_file=log_file) as process:
        url = f"http://{LOOPBACK}:{port}/.well-known/openid-configuration"
        seconds = _wait_ready("oidc-provider-mock", url, process, log_file, timeout, ok=b'"issuer"')
        yield Provider(port=port, process=process, log_file=log_file, startup_seconds=seconds)


# ----------------------------------------------------------------------------------------------
# Streamlit secrets and the portal


def auth_secrets_toml(
    *,
    portal_port: int,
    oidc_port: int,
    cookie_secret: str | None = None,
    client_id: str = "huizhi-portal",
    client_secret: str | None = None,
    provider_name: str | None = None,
) -> str:
    """The ``[auth]`` secrets section for a portal on ``portal_port`` signing in through the
    local provider. ``provider_name`` puts the provider in ``[auth.<name>]`` (for
    ``st.login("<name>")``); None makes it the default provider (``st.login()``)."""

    def q(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string

    cookie_secret = cookie_secret or secrets.token_urlsafe(32)
    client_secret = client_secret or secrets.token_urlsafe(24)
    lines = [
        "# Written by huizhi.demo for the local demo provider; regenerated at every start.",
        "[auth]",
        f"redirect_uri = {q(f'http://{LOOPBACK}:{portal_port}/oauth2callback')}",
        f"cookie_secret = {q(cookie_secret)}",
    ]
    provider = [
        f"client_id = {q(client_id)}",
        f"client_secret = {q(client_secret)}",
        f"server_metadata_url = {q(f'http://{LOOPBACK}:{oidc_port}/.well-known/openid-configuration')}",
    ]
    if provider_name is None:
        lines += provider
    else:
        lines += ["", f"[auth.{provider_name}]", *provider]
    return "\n".join(lines) + "\n"


def write_auth_secrets(path: Path, **kwargs: object) -> Path:
    """Write :func:`auth_secrets_toml` to ``path`` (mode 0600); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(auth_secrets_toml(**kwargs))  # type: ignore[arg-type]
    os.chmod(path, 0o600)
    return path


def default_app_path() -> Path:
    """What ``streamlit run`` starts for the portal: ``huizhi/server.py``, the ``st.App`` that
    serves ``huizhi/app.py`` with ``/livez`` and ``/readyz`` and builds the host at start-up."""
    return Path(__file__).resolve().parent / "server.py"


@dataclass
class Portal:
    """A running Streamlit portal on loopback."""

    port: int
    process: subprocess.Popen[bytes]
    log_file: Path | None
    startup_seconds: float

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def streamlit_command(
    app_path: Path,
    *,
    port: int,
    secrets_files: Sequence[Path],
    extra_args: Sequence[str] = (),
    address: str = LOOPBACK,
    browser_address: str | None = LOOPBACK,
) -> list[str]:
    """``python -m streamlit run app_path`` with the portal's options.

    ``address`` is where the server listens. ``browser_address`` is the host people type (used
    for the printed URL and origin checks): keep it equal to the host in ``redirect_uri``; None
    leaves Streamlit's default. ``secrets_files`` empty keeps Streamlit's usual secrets search.
    """
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app_path),
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # no "Deploy" button or developer menu, even though people connect from loopback
        "--client.toolbarMode", "viewer",
        # an uncaught exception shows no message, type or traceback (database host, port, server
        # paths): people see the portal's own Chinese messages, the log keeps the details
        "--client.showErrorDetails", "none",
        # no full garbage collection after every script run: over the portal's heap (pandas,
        # pyarrow, plotly) it took about a quarter of a second with the GIL held, stalling every
        # other session of the process (bench/load.py); Python's own collector still runs
        "--runner.postScriptGC", "false",
    ]  # fmt: skip
    if browser_address is not None:
        cmd += ["--browser.serverAddress", browser_address, "--browser.serverPort", str(port)]
    for path in secrets_files:
        # replaces Streamlit's default search (~/.streamlit and ./.streamlit): only these files
        cmd += ["--secrets.files", str(path)]
    cmd += list(extra_args)
    return cmd


@contextlib.contextmanager
def portal(
    app_path: Path,
    *,
    port: int = DEFAULT_PORTAL_PORT,
    secrets_files: Sequence[Path],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    extra_args: Sequence[str] = (),
    log_file: Path | None = None,
    timeout: float = 90.0,
) -> Iterator[Portal]:
    """Run ``streamlit run app_path`` on 127.0.0.1:``port`` for the block, reading secrets only
    from ``secrets_files``; ready when ``/_stcore/health`` answers ``ok``."""
    if port_in_use(port):
        raise StartupError(f"port {port} on {LOOPBACK} is already in use (is another portal running?)")
    cmd = streamlit_command(app_path, port=port, secrets_files=secrets_files, extra_args=extra_args)
    with _child("streamlit portal", cmd, env=env, cwd=cwd, log_file=log_file) as process:
        url = f"http://{LOOPBACK}:{port}/_stcore/health"
        seconds = _wait_ready("streamlit portal", url, process, log_file, timeout, ok=b"ok")
        yield Portal(port=port, process=process, log_file=log_file, startup_seconds=seconds)


@dataclass
class SignInStack:
    provider: Provider
    portal: Portal
    secrets_file: Path
    extra: dict[str, object] = field(default_factory=dict)


@contextlib.contextmanager
def sign_in_stack(
    state_dir: Path,
    *,
    app_path: Path | None = None,
    portal_port: int = DEFAULT_PORTAL_PORT,
    oidc_port: int = DEFAULT_OIDC_PORT,
    identities: Sequence[DemoIdentity] = DEMO_IDENTITIES,
    env: Mapping[str, str] | None = None,
    extra_secrets_files: Sequence[Path] = (),
    provider_name: str | None = None,
    token_max_age: int | None = None,
    portal_log: Path | None = None,
    provider_log: Path | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[SignInStack]:
    """Provider + secrets + portal, started in that order and stopped in reverse.

    Writes ``state_dir/auth-secrets.toml``; ``extra_secrets_files`` are read before it (so its
    ``[auth]`` wins). Logs go to the given files, or to the terminal when None.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    secrets_file = write_auth_secrets(
        state_dir / "auth-secrets.toml",
        portal_port=portal_port,
        oidc_port=oidc_port,
        provider_name=provider_name,
    )
    with (
        oidc_provider(oidc_port, identities, token_max_age=token_max_age, log_file=provider_log) as provider,
        portal(
            app_path or default_app_path(),
            port=portal_port,
            secrets_files=[*extra_secrets_files, secrets_file],
            env=env,
            log_file=portal_log,
            extra_args=extra_args,
        ) as running_portal,
    ):
        yield SignInStack(provider=provider, portal=running_portal, secrets_file=secrets_file)


# ----------------------------------------------------------------------------------------------
# The demo


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def identities_table(identities: Sequence[DemoIdentity] = DEMO_IDENTITIES) -> str:
    """A plain-text table of the demo identities (terminal widths of CJK characters respected)."""
    rows = [("sub（登录名）", "姓名", "职务", "groups", "应看到")]
    rows += [(i.sub, i.name, i.title, ",".join(i.groups) or "（无）", i.expect) for i in identities]
    widths = [max(_width(row[col]) for row in rows) for col in range(len(rows[0]) - 1)]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(_pad(cell, w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
        if n == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * _width(row[-1]))
    return "\n".join(out)


def run_demo(
    settings_dir: Path | None = None,
    portal_port: int = DEFAULT_PORTAL_PORT,
    oidc_port: int = DEFAULT_OIDC_PORT,
    *,
    app_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    extra_secrets_files: Sequence[Path] = (),
    identities: Sequence[DemoIdentity] = DEMO_IDENTITIES,
) -> int:
    """Start the demo provider and the portal, print how to sign in, run until Ctrl-C.

    ``settings_dir`` is a writable directory for the generated secrets and the provider's log
    (default ``var/demo`` under the working directory, gitignored in a checkout). Returns a
    process exit code (0 after Ctrl-C, else the portal's).
    """
    settings_dir = Path(settings_dir) if settings_dir is not None else Path.cwd() / "var" / "demo"
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        # `kill <pid>` stops the demo as cleanly as Ctrl-C does
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        return _run_demo(settings_dir, portal_port, oidc_port, app_path, env, extra_secrets_files, identities)
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run_demo(
    settings_dir: Path,
    portal_port: int,
    oidc_port: int,
    app_path: Path | None,
    env: Mapping[str, str] | None,
    extra_secrets_files: Sequence[Path],
    identities: Sequence[DemoIdentity] = DEMO_IDENTITIES,
) -> int:
    provider_log = settings_dir / "oidc-provider.log"
    started = time.monotonic()
    print(
        f"[huizhi] 正在启动本地身份提供方 (OpenID Connect) 127.0.0.1:{oidc_port} 与门户 127.0.0.1:{portal_port} …"
    )
    try:
        with sign_in_stack(
            settings_dir,
            app_path=app_path,
            portal_port=portal_port,
            oidc_port=oidc_port,
            identities=identities,
            env=env,
            extra_secrets_files=extra_secrets_files,
            provider_log=provider_log,
            portal_log=None,  # the portal's own log stays on the terminal
        ) as stack:
            elapsed = time.monotonic() - started
            print(
                "\n"
                f"慧治演示已就绪（{elapsed:.1f} 秒）\n"
                f"  门户:        {stack.portal.url}\n"
                f"  身份提供方:  {stack.provider.base_url}  （仅本机，演示用；日志 {provider_log}）\n\n"
                "在门户点击登录按钮，在身份提供方页面点击下列任一 sub 按钮（或输入 sub 后点 Authorize）：\n\n"
                f"{identities_table(identities)}\n\n"
                "按 Ctrl-C 停止。\n",
                flush=True,
            )
            while True:
                for name, proc in (("门户", stack.portal.process), ("身份提供方", stack.provider.process)):
                    code = proc.poll()
                    if code is not None:
                        print(f"[huizhi] {name}进程已退出（代码 {code}），演示停止。", file=sys.stderr)
                        return code or 1
                time.sleep(0.5)
    except KeyboardInterrupt:
        print("\n[huizhi] 正在停止演示 …", flush=True)
        return 0
    except StartupError as error:
        print(f"[huizhi] 演示启动失败：{error}", file=sys.stderr)
        return 1
