"""Sign-in edge paths in the real portal: an expired ID token, a provider that is down, a
database that is down. Each test runs its own provider/portal pair (the session's stay clean)."""

from __future__ import annotations

from pathlib import Path

from harness import sign_in as sign_in_with

from huizhi import demo

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
