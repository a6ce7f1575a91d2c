"""``huizhi doctor`` and the sign-in provider's discovery document (issue 13, point 7): the real
local provider (oidc-provider-mock) passes; a wrong path, a provider that never answers and a
document whose issuer is not where it was fetched from each fail with a clear line and exit 1,
within a bounded time. The admin page 系统信息 shows the same findings in Chinese."""

from __future__ import annotations

import http.server
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from huizhi import cli, demo
from huizhi.doctor import DISCOVERY_TIMEOUT, FAIL, OK, check_signin, issuer_problem


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with demo.oidc_provider(demo.free_port(), log_file=tmp_path_factory.mktemp("idp") / "idp.log") as running:
        yield running


def _secrets(tmp_path: Path, metadata_url: str) -> Path:
    path = demo.write_auth_secrets(tmp_path / "auth.toml", portal_port=8501, oidc_port=1)
    text = path.read_text(encoding="utf-8")
    start = text.index("server_metadata_url")
    end = text.index("\n", start)
    path.write_text(text[:start] + f'server_metadata_url = "{metadata_url}"' + text[end:], encoding="utf-8")
    return path


def _signin(findings) -> list[tuple[str, str]]:
    return [(f.status, f.detail) for f in findings if f.check == "sign-in"]


def test_the_issuer_rule_of_openid_discovery():
    well_known = "https://idp.example.gov.cn/realms/daxing/.well-known/openid-configuration"
    assert issuer_problem(well_known, "https://idp.example.gov.cn/realms/daxing") is None
    assert issuer_problem(well_known, "https://idp.example.gov.cn/realms/daxing/") is None
    assert "is not https://idp.example.gov.cn/realms/daxing" in issuer_problem(well_known, "http://keycloak:8080/realms/daxing")
    assert "does not end in /.well-known/openid-configuration" in issuer_problem("https://idp/x", "https://idp")


def test_the_real_provider_passes(tmp_path, provider):
    url = f"http://127.0.0.1:{provider.port}/.well-known/openid-configuration"
    found = _signin(check_signin([_secrets(tmp_path, url)]))
    assert (OK, f"provider default: issuer http://127.0.0.1:{provider.port}") in found
    assert all(status == OK for status, _ in found), found


def test_a_wrong_path_on_the_real_provider_fails_clearly(tmp_path, provider, monkeypatch, capsys):
    url = f"http://127.0.0.1:{provider.port}/realms/daxing/.well-known/openid-configuration"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUIZHI_DATABASE_URL", f"duckdb:///{tmp_path / 'none.duckdb'}")
    assert cli.main(["doctor", "--secrets", str(_secrets(tmp_path, url))]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(FAIL) and " sign-in " in line)
    assert f"provider default: {url} does not answer: HTTP Error 404" in line, out


class _Relay(http.server.BaseHTTPRequestHandler):
    """Serves the real provider's discovery document from another address, as a provider behind
    a proxy that reports its internal name does."""

    upstream = ""

    def do_GET(self):  # noqa: N802 (http.server's name)
        with urllib.request.urlopen(self.upstream + self.path, timeout=5) as answer:
            body = answer.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_issuer_that_is_not_the_fetched_address_fails(tmp_path, provider):
    handler = type("Relay", (_Relay,), {"upstream": f"http://127.0.0.1:{provider.port}"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        relay = f"http://127.0.0.1:{server.server_address[1]}"
        found = _signin(check_signin([_secrets(tmp_path, f"{relay}/.well-known/openid-configuration")]))
    finally:
        server.shutdown()
        server.server_close()
    assert (FAIL, f"provider default: the document's issuer http://127.0.0.1:{provider.port} is not {relay} "
                  "(the address it was fetched from)") in found  # fmt: skip


def test_a_provider_that_never_answers_fails_within_the_timeout(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel completes the handshake) and never replies
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/.well-known/openid-configuration"
        started = time.monotonic()
        found = _signin(check_signin([_secrets(tmp_path, url)]))
        took = time.monotonic() - started
    finally:
        silent.close()
    assert any(status == FAIL and "does not answer: timed out" in detail for status, detail in found), found
    assert took < DISCOVERY_TIMEOUT + 2, took


def _admin_script(database_url: str, secrets_file: str) -> None:
    import streamlit as st

    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.demo import demo_access
    from huizhi.host import create_host
    from huizhi_pages.admin import system_page

    st.config.set_option("secrets.files", [secrets_file])
    host = create_host(load_settings({}, database_url=database_url, access=demo_access()))
    try:
        admin = Identity("t|admin", "平台管理员", frozenset({Grant(Role.PLATFORM_ADMIN)}))
        system_page(host.page_context(admin, "admin-system", params={}, nav={}))
    finally:
        host.dispose()


@pytest.mark.parametrize("reachable", [True, False], ids=["provider-up", "provider-wrong-url"])
def test_the_admin_page_shows_the_same_checks_in_chinese(tmp_path, database_url, provider, reachable):
    port = provider.port if reachable else demo.free_port()
    secrets = _secrets(tmp_path, f"http://127.0.0.1:{port}/.well-known/openid-configuration")
    at = AppTest.from_function(_admin_script, args=(database_url, str(secrets)), default_timeout=60).run()
    assert not at.exception
    at.button(key="admin-doctor").click().run()
    assert not at.exception
    table = at.dataframe[-1].value
    rows = {(r["检查项"], r["结果"]) for r in table.to_dict("records")}
    for label in ("配置文件", "角色映射", "数据库连接", "数据库结构版本", "插件"):
        assert (label, "正常") in rows, table
    signin = table[table["检查项"] == "统一身份认证"]
    if reachable:
        assert set(signin["结果"]) == {"正常"} and f"issuer http://127.0.0.1:{port}" in " ".join(signin["详情"])
        assert at.success and "全部检查通过" in at.success[0].value
    else:
        assert "异常" in set(signin["结果"]) and f"127.0.0.1:{port}" in " ".join(signin["详情"])
        # (on PostgreSQL the page's 后台任务 section also warns that no worker is online)
        assert any("发现 1 项问题" in e.value for e in at.error), [e.value for e in at.error]
