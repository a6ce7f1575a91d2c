"""Sign-in edge paths in the real portal: an expired ID token, a provider that is down, a
database that is down. Each test runs its own provider/portal pair (the session's stay clean)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from harness import sign_in as sign_in_with

from huizhi import demo

# What Streamlit's own exception page shows, none of which people may see.
STREAMLIT_ERROR_PAGE = ("Traceback", "Ask Google", "Ask ChatGPT", "site-packages", "OperationalError")


def _no_details(text: str, *secrets: str) -> None:
    for needle in (*STREAMLIT_ERROR_PAGE, *secrets):
        assert needle not in text, needle

EXPIRES_AFTER = 8  # seconds: the provider's ID token lifetime in the expiry test


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _portal(tmp_path: Path, provider_port: int, env: dict[str, str], *, access: bool = True):
    """A portal of its own; with the demo's role mapping unless ``access`` is False."""
    port = demo.free_port()
    secrets = demo.write_auth_secrets(tmp_path / "secrets.toml", portal_port=port, oidc_port=provider_port)
    if access:
        env = {**env, "HUIZHI_CONFIG": str(demo.write_demo_config(tmp_path / "huizhi.toml"))}
    return demo.portal(demo.default_app_path(), port=port, secrets_files=[secrets], env=env,
                       log_file=tmp_path / "streamlit.log")


def test_expired_id_token_means_signing_in_again(page, tmp_path, wait_rendered):
    with demo.oidc_provider(demo.free_port(), token_max_age=EXPIRES_AFTER, log_file=tmp_path / "idp.log") as idp, \
            _portal(tmp_path, idp.port, {"HUIZHI_DATABASE_URL": f"duckdb:///{tmp_path / 'p.duckdb'}"}) as portal:
        sign_in_with(page, "staff-jxj", portal, idp)
        assert "您好，李晓梅" in _main(page)
        page.wait_for_timeout((EXPIRES_AFTER + 2) * 1000)
        page.goto(portal.url)
        # The portal signs the person out; the provider asks to confirm ending its own session.
        page.wait_for_url(f"{idp.base_url}/oauth2/end_session**", timeout=30_000)
        page.get_by_role("button", name="End session").click()
        page.wait_for_url(f"{portal.url}/**")
        wait_rendered(page)
        text = _main(page)
        assert "您好" not in text and "登录" in text


def test_provider_down_gives_a_clear_message(page, tmp_path, wait_rendered):
    dead_port = demo.free_port()  # nothing listens there
    with _portal(tmp_path, dead_port, {"HUIZHI_DATABASE_URL": f"duckdb:///{tmp_path / 'p.duckdb'}"}) as portal:
        page.goto(portal.url)
        wait_rendered(page)
        page.get_by_role("button", name="使用统一身份认证登录").click()
        wait_rendered(page)
        text = _main(page)
        assert "统一身份认证服务（统一身份认证）暂时无法连接" in text
        assert page.url.startswith(portal.url)  # not sent to a dead provider or a bare HTTP 400


def test_database_down_gives_a_clear_message_and_recovers_nothing_lost(page, tmp_path, wait_rendered, oidc):
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{demo.free_port()}/huizhi"
    with _portal(tmp_path, oidc.port, {"HUIZHI_DATABASE_URL": dead}) as portal:
        page.goto(portal.url)
        wait_rendered(page, timeout=60)
        text = _main(page)
        assert "数据库暂时无法连接，数据未丢失" in text
        assert "Traceback" not in text
        whole = page.locator("body").inner_text()
        _no_details(whole, dead.split("@", 1)[1], "127.0.0.1:", "/huizhi")
        # the load balancer hears it too: alive, not ready
        status, body = demo.http_get(f"{portal.url}/readyz", timeout=30)
        assert status == 503 and json.loads(body)["checks"]["host"]["ok"] is False
        assert demo.http_get(f"{portal.url}/livez")[0] == 200


def _pg_database() -> str | None:
    from databases import create_pg_database

    try:
        return create_pg_database()
    except sa.exc.OperationalError:
        return None


def test_database_lost_mid_session_shows_chinese_on_reload_not_streamlits_page(page, tmp_path, wait_rendered, oidc):
    """Signed in, then the portal's database goes (dropped: the server drops the connections);
    a reload meets it in the shell (the sign-in audit), outside every page's boundary."""
    from databases import drop_pg_database

    url = _pg_database()
    if url is None:
        pytest.skip("needs the PostgreSQL server of the tests")
    name = sa.engine.make_url(url).database
    try:
        with _portal(tmp_path, oidc.port, {"HUIZHI_DATABASE_URL": url}) as portal:
            sign_in_with(page, "staff-jxj", portal, oidc)
            assert "您好，李晓梅" in _main(page)
            drop_pg_database(url)
            page.reload()
            wait_rendered(page, timeout=60)
            text = page.locator("body").inner_text()
            assert "数据库不存在或尚未创建" in text and "请联系平台管理员" in text
            assert "数据未丢失" not in text  # it was dropped: saying so would be untrue
            _no_details(text, str(name), "5432")
    finally:
        drop_pg_database(url)


def test_no_role_mapping_denies_everyone_and_says_so(page, tmp_path, oidc):
    """A deployment without [access]: even a leader gets the no-access page, which says that the
    platform has no role mapping yet and whom to contact, and names the account readably."""
    with _portal(tmp_path, oidc.port, {"HUIZHI_DATABASE_URL": f"duckdb:///{tmp_path / 'p.duckdb'}"},
                 access=False) as portal:
        sign_in_with(page, "leader", portal, oidc)
        text = _main(page)
        assert "暂无访问权限" in text and "尚未配置角色映射" in text and "平台管理员" in text
        assert f"leader（127.0.0.1:{oidc.port}）" in text  # login and provider host, not "<issuer>|<sub>"
        assert "|leader" not in text
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        log = (tmp_path / "streamlit.log").read_text(encoding="utf-8")
        assert "no [access] section" in log  # and the operator was told at start-up
