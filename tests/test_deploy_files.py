"""The deployment files under deploy/ (issue 13, point 4), tested as far as this machine allows:
no container engine runs here, so the image is not built and compose does not run. What is
exercised for real:

* ``deploy/entrypoint.sh`` run directly with a container's environment: the ``migrate`` role
  against the test database, the ``portal`` role writing the sign-in secrets from
  ``HUIZHI_AUTH_*`` and serving ``/readyz`` until SIGTERM, and its refusals;
* settings from the environment exactly as ``compose.yaml`` sets them, and its ``huizhi.toml``;
* ``deploy/compose/nginx.conf`` is the one template rendered for the compose services, and
  Debian's nginx accepts it (``nginx -t``);
* ``compose.yaml`` is consistent with the files it names: the entrypoint's roles and variables,
  the mounted files, the Keycloak realm's client and redirect URI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from huizhi import demo
from huizhi.access import check_access_config
from huizhi.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
VENV_BIN = Path(sys.executable).parent
NGINX = os.environ.get("HUIZHI_NGINX", shutil.which("nginx") or "/usr/sbin/nginx")


def _nginx_proxy():
    """tests/browser/nginx_proxy.py (the browser tests' renderer), loaded by path: tests/browser
    is not on sys.path for the tests in tests/."""
    name = "nginx_proxy_for_deploy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "browser" / "nginx_proxy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _container_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A container's environment: no HUIZHI_* from the developer's shell, the venv's huizhi and
    python3 first on PATH (in the image they are the system's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_")}
    env.update(PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}", HOME=str(tmp_path),
               HUIZHI_DATA_DIR=str(tmp_path / "data"), HUIZHI_SECRETS=str(tmp_path / "run" / "secrets.toml"),
               NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")  # fmt: skip
    env.update(extra)
    return env


def _entrypoint(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ENTRYPOINT), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=180)  # fmt: skip


AUTH = {
    "HUIZHI_AUTH_REDIRECT_URI": "http://huizhi.localhost:8080/oauth2callback",
    "HUIZHI_AUTH_CLIENT_ID": "huizhi-portal",
    "HUIZHI_AUTH_CLIENT_SECRET": 'se"cr\\et with quote and backslash',  # TOML-escaped by the script
    "HUIZHI_AUTH_SERVER_METADATA_URL": "http://127.0.0.1:9/.well-known/openid-configuration",
}


def test_entrypoint_migrates_then_serves_the_portal_until_sigterm(tmp_path, database_url):
    cookie = tmp_path / "cookie-secret"  # a Docker/Kubernetes secret file: NAME_FILE
    cookie.write_text("one-secret-for-all-replicas\n", encoding="utf-8")
    port = demo.free_port()
    env = _container_env(tmp_path, HUIZHI_DATABASE_URL=database_url, HUIZHI_LOG_FORMAT="json",
                         HUIZHI_ADDRESS="127.0.0.1", HUIZHI_PORT=str(port),
                         HUIZHI_AUTH_COOKIE_SECRET_FILE=str(cookie), **AUTH)  # fmt: skip

    # the one-shot `migrate` container's role, then a replica's (which never migrates itself)
    migrated = _entrypoint(env, "migrate", cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "database at revision" in migrated.stdout and "migrating the database schema" in migrated.stderr

    log = open(tmp_path / "portal.log", "ab")  # noqa: SIM115 - the child holds it
    portal = subprocess.Popen(["bash", str(ENTRYPOINT), "portal"], env=env, cwd=tmp_path, stdout=log,
                              stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert portal.poll() is None, (tmp_path / "portal.log").read_text(encoding="utf-8")
            try:
                status, body = demo.http_get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            except OSError:
                status, body = 0, b""
            if status == 200:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.3)
        # exec: the entrypoint's process is `huizhi run` itself, with the replica's settings
        cmdline = Path(f"/proc/{portal.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1].endswith(b"/huizhi"), cmdline  # the console script, run by the venv's python
        assert cmdline[2:9] == [b"run", b"--address", b"127.0.0.1", b"--port", str(port).encode(), b"--secrets",
                                env["HUIZHI_SECRETS"].encode()], cmdline  # fmt: skip
        environ = dict(
            item.split(b"=", 1) for item in Path(f"/proc/{portal.pid}/environ").read_bytes().split(b"\0") if b"=" in item
        )
        assert environ[b"HUIZHI_MIGRATE"] == b"0"
        secrets = Path(env["HUIZHI_SECRETS"])
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        auth = tomllib.loads(secrets.read_text(encoding="utf-8"))["auth"]
        assert auth == {
            "redirect_uri": AUTH["HUIZHI_AUTH_REDIRECT_URI"], "cookie_secret": "one-secret-for-all-replicas",
            "client_id": "huizhi-portal", "client_secret": AUTH["HUIZHI_AUTH_CLIENT_SECRET"],
            "server_metadata_url": AUTH["HUIZHI_AUTH_SERVER_METADATA_URL"],
        }  # fmt: skip
        portal.send_signal(signal.SIGTERM)  # what `docker stop` sends
        assert portal.wait(30) == 0
    finally:
        if portal.poll() is None:
            portal.kill()
            portal.wait(10)
    text = (tmp_path / "portal.log").read_text(encoding="utf-8")
    assert '"logger": "huizhi.server"' in text and '"message": "building the host at start-up"' in text  # JSON logs


def test_entrypoint_refuses_a_portal_without_sign_in_settings(tmp_path):
    env = _container_env(tmp_path)
    bare = _entrypoint(env, "portal", cwd=tmp_path)
    assert bare.returncode == 64
    assert "no sign-in settings: mount a Streamlit secrets file" in bare.stderr and "HUIZHI_AUTH_COOKIE_SECRET" in bare.stderr
    partial = _entrypoint({**env, **AUTH}, "portal", cwd=tmp_path)  # no cookie secret
    assert partial.returncode == 64
    assert "sign-in settings incomplete, missing: HUIZHI_AUTH_COOKIE_SECRET" in partial.stderr
    unreadable = _entrypoint({**env, **AUTH, "HUIZHI_AUTH_COOKIE_SECRET_FILE": str(tmp_path / "absent")}, "portal",
                             cwd=tmp_path)  # fmt: skip
    assert unreadable.returncode == 66 and "is not a readable file" in unreadable.stderr
    assert not Path(env["HUIZHI_SECRETS"]).exists()


def test_entrypoint_passes_other_commands_through(tmp_path):
    done = _entrypoint(_container_env(tmp_path), "bash", "-c", "echo passed $0", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "passed bash"


def test_settings_from_the_environment_as_compose_sets_them(tmp_path):
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    raw = compose["services"]["portal-1"]["environment"]
    env = {k: re.sub(r"\$\{(\w+)(:[?-][^}]*)?\}", lambda m: f"<{m.group(1)}>", str(v)) for k, v in raw.items()}
    env["HUIZHI_CONFIG"] = str(DEPLOY / "compose" / "huizhi.toml")  # mounted at /etc/huizhi/huizhi.toml
    settings = load_settings(env)
    assert settings.database_url == "postgresql+psycopg://huizhi:<POSTGRES_PASSWORD>@postgres:5432/huizhi"
    assert settings.store_kind == "postgresql" and settings.migrate is False
    assert settings.log_format == "json" and settings.connect_timeout == 5 and settings.pool_size == 5
    assert check_access_config(settings.access, settings.departments) == []
    # the environment wins over the file, one setting at a time
    over = load_settings({**env, "HUIZHI_DB_CONNECT_TIMEOUT": "2", "HUIZHI_DB_POOL_SIZE": "12", "HUIZHI_LOG_FORMAT": "text"})
    assert (over.connect_timeout, over.pool_size, over.log_format) == (2, 12, "text")
    with pytest.raises(ValueError, match="HUIZHI_DB_CONNECT_TIMEOUT / \\[database\\] connect_timeout must be a number >= 1"):
        load_settings({"HUIZHI_DB_CONNECT_TIMEOUT": "0"})


def test_compose_is_consistent_with_the_files_it_names():
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"postgres", "migrate", "portal-1", "portal-2", "worker", "nginx", "keycloak"} <= services.keys()
    entry = ENTRYPOINT.read_text(encoding="utf-8")
    for name, role in (("migrate", "migrate"), ("portal-1", "portal"), ("portal-2", "portal"), ("worker", "worker")):
        assert services[name]["command"] == [role] and f"\n    {role})" in entry, name
    for name in ("portal-1", "portal-2", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    auth_vars = {k for k in services["portal-1"]["environment"] if k.startswith("HUIZHI_AUTH_")}
    assert auth_vars == {f"HUIZHI_AUTH_{k.upper()}" for k in re.search(r"AUTH_KEYS=\(([^)]*)\)", entry).group(1).split()}
    # the replicas share one cookie secret and one redirect URI (docs/deployment.md)
    assert services["portal-1"]["environment"] == services["portal-2"]["environment"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).resolve().is_file(), volume
    nginx_conf = services["nginx"]["volumes"][0].split(":", 1)[0]
    upstreams = re.findall(r"server (\S+);", (COMPOSE.parent / nginx_conf).read_text(encoding="utf-8"))
    assert upstreams == [f"{name}:8501" for name in ("portal-1", "portal-2")] and all(n in services for n in ("portal-1", "portal-2"))
    realm = yaml.safe_load((DEPLOY / "keycloak" / "daxing-realm.json").read_text(encoding="utf-8"))  # JSON is YAML
    client = next(c for c in realm["clients"] if c["clientId"] == services["portal-1"]["environment"]["HUIZHI_AUTH_CLIENT_ID"])
    assert client["redirectUris"] == ["${HUIZHI_PUBLIC_URL}/oauth2callback"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", (DEPLOY / "keycloak" / "daxing-realm.json").read_text(encoding="utf-8")))
    assert placeholders == {"KEYCLOAK_CLIENT_SECRET", "HUIZHI_PUBLIC_URL", "HUIZHI_EXAMPLE_PASSWORD"}
    assert placeholders <= services["keycloak"]["environment"].keys()  # Keycloak resolves them from its environment
    assert services["portal-1"]["environment"]["HUIZHI_AUTH_SERVER_METADATA_URL"].startswith(
        "http://keycloak.localhost:8081/realms/" + realm["realm"] + "/"
    )
    groups = {g["name"] for g in realm["groups"]}
    rules = tomllib.loads((COMPOSE.parent / "huizhi.toml").read_text(encoding="utf-8"))["access"]["rules"]
    assert {r["value"] for r in rules} == groups  # every group the realm hands out maps to a role


def test_compose_nginx_conf_is_the_template_rendered():
    proxy = _nginx_proxy()
    assert proxy.COMPOSE_FILE.read_text(encoding="utf-8") == proxy.compose(), (
        "deploy/compose/nginx.conf is stale: run .venv/bin/python tests/browser/nginx_proxy.py"
    )


@pytest.mark.skipif(not Path(NGINX).exists(), reason="Debian's nginx is not installed (./dev setup --system)")
def test_nginx_accepts_the_compose_config(tmp_path):
    """``nginx -t`` on deploy/compose/nginx.conf, its two upstream names pointed at loopback:
    nginx resolves upstream names when it loads the file, and portal-1/portal-2 exist only on
    the compose network. Everything else is the file as compose mounts it."""
    proxy = _nginx_proxy()
    text = proxy.COMPOSE_FILE.read_text(encoding="utf-8")
    site = tmp_path / "site.conf"
    site.write_text(text.replace("portal-1:8501", "127.0.0.1:8501").replace("portal-2:8501", "127.0.0.1:8502")
                    .replace("listen 80;", f"listen 127.0.0.1:{demo.free_port()};"), encoding="utf-8")  # fmt: skip
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "temp" / kind).mkdir(parents=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(proxy._main_conf(tmp_path, site), encoding="utf-8")
    done = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr
