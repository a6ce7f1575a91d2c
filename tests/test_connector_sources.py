"""``ctx.source``: connector reads cached per query and parameters with an explicit freshness,
a timeout, and the last good data kept (marked stale, with since when) while a source is down;
connector settings and secrets by name; the files connector through the upload parser; and the
page-level notice (数据源不可用) with the rest of the page still drawn."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from oauth_api import CLIENT_SECRET, OAuthAPI
from plugin_fixtures import make_plugin, page

from huizhi.access import Grant, Identity, Role
from huizhi.config import load_settings
from huizhi.host import Host
from huizhi.specs import ConnectorSpec
from huizhi_connectors.files import FilesConnection
from huizhi_connectors.rest import RestConnection
from huizhi_connectors.sql import ReadOnlyError, SQLConnection

JXJ_STAFF = Identity("test|jxj", "经信局职员", frozenset({Grant(Role.STAFF, "jxj")}))


@pytest.fixture
def api() -> Iterator[OAuthAPI]:
    server = OAuthAPI()
    yield server
    server.close()


def api_plugin():
    spec = ConnectorSpec("jxj_api", "经信局设备接口", RestConnection.from_config, kind="rest")
    return make_plugin("jxj_plugin", department="jxj", pages=[page("jxj-page")], huizhi_connectors=lambda: [spec])


def api_host(make_host: Callable[..., Host], api: OAuthAPI, **freshness) -> Host:
    return make_host(extra_plugins=[("jxj_plugin", api_plugin())], connectors={"jxj_api": api.config(**freshness)})


def test_results_are_cached_per_query_and_params_for_max_age(make_host, api: OAuthAPI) -> None:
    host = api_host(make_host, api, max_age=60)
    ctx = host.page_context(JXJ_STAFF, "jxj-page")
    first = ctx.source("jxj_api", "/devices")
    assert first.available and not first.stale and not first.down and len(first.data) == 7
    assert first.fetched_at is not None and abs((dt.datetime.now(dt.UTC).replace(tzinfo=None) - first.fetched_at).total_seconds()) < 5
    requests = api.data_requests
    again = ctx.source("jxj_api", "/devices")
    assert api.data_requests == requests and again.fetched_at == first.fetched_at  # from the cache
    ctx.source("jxj_api", "/items", {"page": 2})  # other params: another entry
    assert api.data_requests == requests + 1
    ctx.source("jxj_api", "/devices", max_age=0)  # a caller may ask for fresher data
    assert api.data_requests == requests + 4


def test_a_failing_source_keeps_the_last_good_data_marked_stale(make_host, api: OAuthAPI) -> None:
    host = api_host(make_host, api, max_age=0, retry_interval=60)
    ctx = host.page_context(JXJ_STAFF, "jxj-page")
    good = ctx.source("jxj_api", "/devices")
    api.mode = "fail"
    down = ctx.source("jxj_api", "/devices")
    assert down.stale and down.down and "HTTP 500" in down.error
    assert down.data.equals(good.data) and down.fetched_at == good.fetched_at
    assert down.error_since >= good.fetched_at
    requests = api.data_requests
    later = ctx.source("jxj_api", "/devices")  # within retry_interval: not asked again
    assert api.data_requests == requests and later.error_since == down.error_since


def test_the_source_recovers_and_error_since_is_the_first_failure(make_host, api: OAuthAPI) -> None:
    host = api_host(make_host, api, max_age=0, retry_interval=0)
    ctx = host.page_context(JXJ_STAFF, "jxj-page")
    ctx.source("jxj_api", "/devices")
    api.mode = "fail"
    first = ctx.source("jxj_api", "/devices")
    time.sleep(0.05)
    second = ctx.source("jxj_api", "/devices")
    assert second.error_since == first.error_since  # down since the first failure
    api.mode = "ok"
    back = ctx.source("jxj_api", "/devices")
    assert not back.stale and back.error_since is None and back.fetched_at > first.error_since


def test_a_slow_source_is_cut_off_at_the_timeout(make_host, api: OAuthAPI) -> None:
    host = api_host(make_host, api, max_age=0, timeout=0.5)
    ctx = host.page_context(JXJ_STAFF, "jxj-page")
    ctx.source("jxj_api", "/items")
    api.mode, api.delay = "slow", 3
    started = time.monotonic()
    result = ctx.source("jxj_api", "/items")
    assert time.monotonic() - started < 1.5
    assert result.stale and result.available and "0.5 s" in (result.error or "")


def test_a_source_that_never_answered_has_no_data(make_host, api: OAuthAPI) -> None:
    api.mode = "fail"
    host = api_host(make_host, api)
    result = host.page_context(JXJ_STAFF, "jxj-page").source("jxj_api", "/devices")
    assert not result.available and result.down and result.fetched_at is None


def test_bad_freshness_settings_are_reported(make_host, api: OAuthAPI) -> None:
    from huizhi.district import DAXING
    from huizhi.host import check_connector_config

    assert check_connector_config({"jxj_api": {"max_age": "5 minutes"}}, DAXING) == [
        "[connectors.jxj_api] max_age must be a number of seconds (> 0), got '5 minutes'"
    ]


# --- settings and secrets ------------------------------------------------------------------------


def test_secrets_come_from_the_environment_or_a_secrets_file(tmp_path: Path, make_host, api: OAuthAPI) -> None:
    config = tmp_path / "huizhi.toml"
    config.write_text(
        f'[connectors.jxj_api]\nbase_url = "{api.url}"\ntoken_endpoint = "{api.url}/token"\n'
        'client_id = "huizhi"\nclient_secret_env = "JXJ_API_SECRET"\nmax_age = 5\n', encoding="utf-8")
    settings = load_settings({"HUIZHI_CONFIG": str(config), "JXJ_API_SECRET": CLIENT_SECRET, "HUIZHI_SECRETS": "/nonexistent"})
    assert settings.connector_env == {"JXJ_API_SECRET": CLIENT_SECRET}
    host = make_host(extra_plugins=[("jxj_plugin", api_plugin())], connectors=settings.connectors,
                     connector_env=settings.connector_env)
    assert host.page_context(JXJ_STAFF, "jxj-page").source("jxj_api", "/devices").available

    # the variable is not set: a clear error naming it, when the connector is first asked for
    missing = load_settings({"HUIZHI_CONFIG": str(config), "HUIZHI_SECRETS": "/nonexistent"})
    host = make_host(extra_plugins=[("jxj_plugin", api_plugin())], connectors=missing.connectors,
                     connector_env=missing.connector_env)
    with pytest.raises(ValueError, match="client_secret_env names the environment variable JXJ_API_SECRET, which is not set"):
        host.page_context(JXJ_STAFF, "jxj-page").connector("jxj_api")
    from huizhi.district import DAXING
    from huizhi.host import check_connector_config

    assert check_connector_config(missing.connectors, DAXING, missing.connector_env) == [
        "[connectors.jxj_api] client_secret_env names the environment variable JXJ_API_SECRET, which is not set"
    ]

    # a Streamlit secrets file under the same heading: its keys win over huizhi.toml's
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[connectors.jxj_api]\nclient_secret = "{CLIENT_SECRET}"\nmax_age = 9\n', encoding="utf-8")
    merged = load_settings({"HUIZHI_CONFIG": str(config), "HUIZHI_SECRETS": str(secrets)})
    assert merged.connectors["jxj_api"]["client_secret"] == CLIENT_SECRET and merged.connectors["jxj_api"]["max_age"] == 9


# --- the files connector --------------------------------------------------------------------------


FRAME = pd.DataFrame({"编号": ["d1", "d2", "d3"], "镇街": ["黄村镇", "西红门镇", "黄村镇"], "数量": [3, 5, 7]})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    root.mkdir()
    text = FRAME.to_csv(index=False)
    (root / "utf8.csv").write_bytes(text.encode("utf-8"))
    (root / "gbk.csv").write_bytes(text.encode("gb18030"))
    FRAME.to_excel(root / "book.xlsx", index=False)
    FRAME.to_parquet(root / "data.parquet", index=False)
    (root / "broken.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    return root


def files_host(make_host: Callable[..., Host], folder: Path, **freshness) -> Host:
    spec = ConnectorSpec("jxj_files", "经信局共享盘", FilesConnection.from_config, kind="file")
    plugin = make_plugin("jxj_plugin", department="jxj", pages=[page("jxj-page")], huizhi_connectors=lambda: [spec])
    return make_host(extra_plugins=[("jxj_plugin", plugin)], connectors={"jxj_files": {"root": str(folder), **freshness}})


def test_the_files_connector_reads_each_format(make_host, folder: Path) -> None:
    ctx = files_host(make_host, folder).page_context(JXJ_STAFF, "jxj-page")
    for name in ["utf8.csv", "gbk.csv", "book.xlsx", "data.parquet"]:
        result = ctx.source("jxj_files", name)
        assert not result.stale, (name, result.error)
        frame = result.data
        assert list(frame.columns) == ["编号", "镇街", "数量"], name
        assert list(frame["镇街"]) == ["黄村镇", "西红门镇", "黄村镇"], name
        assert [int(float(v)) for v in frame["数量"]] == [3, 5, 7], name


def test_excel_and_csv_go_to_the_upload_parser_and_reads_stay_in_the_folder(folder: Path) -> None:
    from huizhi.excel.problems import FileRejected
    from huizhi.excel.tables import read_table_file
    from huizhi.sources import TableFile

    files = FilesConnection.from_config({"root": str(folder)})
    handed = files.fetch("book.xlsx")
    assert isinstance(handed, TableFile) and handed.content == (folder / "book.xlsx").read_bytes()
    with pytest.raises(FileRejected) as rejected:
        read_table_file(files.fetch("broken.xlsx"))
    assert rejected.value.message  # the upload parser's Chinese message
    with pytest.raises(ValueError, match="outside"):
        files.read("../secret.csv")
    with pytest.raises(FileNotFoundError):
        files.read("missing.csv")


def test_a_file_that_turns_unreadable_keeps_its_last_good_data(make_host, folder: Path) -> None:
    ctx = files_host(make_host, folder, max_age=0, retry_interval=0).page_context(JXJ_STAFF, "jxj-page")
    assert len(ctx.source("jxj_files", "book.xlsx").data) == 3
    (folder / "book.xlsx").write_bytes(b"garbage")
    result = ctx.source("jxj_files", "book.xlsx")
    assert result.stale and len(result.data) == 3 and "FileRejected" in result.error


def test_the_sql_connector_refuses_plain_strings(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a INTEGER)"))
    engine.dispose()
    sql = SQLConnection.from_config({"url": f"sqlite:///{path}"})
    street = "x' OR '1'='1"
    with pytest.raises(ReadOnlyError, match="not a string"):
        sql.query(f"SELECT * FROM t WHERE a = '{street}'")
    table = sa.table("t", sa.column("a"))
    assert sql.fetch(sa.select(table.c.a).where(table.c.a == 1)).empty  # a statement object is fine
    # values bound inside a statement are part of its cache key
    assert sql.cache_key(sa.select(table.c.a).where(table.c.a == 1)) != sql.cache_key(
        sa.select(table.c.a).where(table.c.a == 2))
    sql.close()


def test_the_notice_without_any_data_is_an_error_box_naming_the_source() -> None:
    from huizhi.kit import source_notice_text
    from huizhi.sources import SourceResult

    since = dt.datetime(2026, 12, 1, 1, 30)  # naive UTC: 09:30 in Beijing
    assert source_notice_text(SourceResult("x", error_since=since, stale=True, error="boom"), "经信局设备库") == (
        "数据源不可用：经信局设备库自 2026-12-01 09:30（北京时间）起无法访问，暂无可显示的数据。"
        "请稍后刷新页面；如长时间无法访问，请联系平台管理员。"
    )
    assert source_notice_text(SourceResult("x", data=[1], fetched_at=since), "经信局设备库") is None


# --- the page ------------------------------------------------------------------------------------


def source_page_script(database_url: str, data_dir: str, api_url: str, secret: str) -> None:
    import streamlit as st

    from huizhi import kit
    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.host import create_host
    from huizhi.specs import ConnectorSpec, PageSpec, PluginInfo
    from huizhi_connectors.rest import RestConnection

    class Plugin:
        @staticmethod
        def huizhi_plugin_info():
            return PluginInfo(name="jxj_plugin", title="经信局", department="jxj", version="1", host_api=">=1.0")

        @staticmethod
        def huizhi_connectors():
            return [ConnectorSpec("jxj_api", "经信局设备接口", RestConnection.from_config, kind="rest")]

        @staticmethod
        def huizhi_pages():
            def render(ctx):
                st.title("设备运行情况")
                st.metric("本页其他指标", "42")
                result = kit.source_data(ctx, "jxj_api", "/devices", title="经信局设备接口")
                if result.available:
                    st.dataframe(result.data)
                st.caption("页脚：本页其余部分照常显示")

            return [PageSpec(title="设备", url_path="jxj-page", render=render, department="jxj")]

    from huizhi import hookimpl

    for name in ("huizhi_plugin_info", "huizhi_connectors", "huizhi_pages"):
        hookimpl(getattr(Plugin, name))

    def host():
        if "host" in st.session_state:  # one host across reruns: its cache holds the last good data
            return st.session_state["host"]
        config = {"base_url": api_url, "token_endpoint": f"{api_url}/token", "client_id": "huizhi",
                  "client_secret": secret, "max_age": 0, "retry_interval": 0, "departments": ["jxj"]}
        st.session_state["host"] = create_host(
            load_settings({}, database_url=database_url, data_dir=data_dir, connectors={"jxj_api": config}),
            extra_plugins=[("jxj_plugin", Plugin)], use_entry_points=False, migrate=False,
        )
        return st.session_state["host"]

    h = host()
    identity = Identity("apptest", "测试", frozenset({Grant(Role.STAFF, "jxj")}))
    spec, _ = h.registry.pages["jxj-page"]
    spec.render(h.page_context(identity, "jxj-page"))


def test_the_page_says_the_source_is_down_and_shows_the_last_good_data(make_host, api: OAuthAPI) -> None:
    from streamlit.testing.v1 import AppTest

    host = make_host()  # the database, migrated
    kwargs = dict(database_url=host.settings.database_url, data_dir=str(host.settings.data_dir), api_url=api.url,
                  secret=CLIENT_SECRET)
    at = AppTest.from_function(source_page_script, kwargs=kwargs, default_timeout=60).run()
    try:
        page_shows_last_good_data(at, api)
    finally:
        at.session_state["host"].dispose()


def page_shows_last_good_data(at, api: OAuthAPI) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning and len(at.dataframe[0].value) == 7

    api.mode = "fail"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [warning] = at.warning
    assert warning.value.startswith("数据源不可用：经信局设备接口自 ")
    assert "起无法访问" in warning.value and "获取的最近一次数据" in warning.value and "北京时间" in warning.value
    assert len(at.dataframe[0].value) == 7  # the last good data, still shown
    assert at.title[0].value == "设备运行情况" and at.metric[0].value == "42"  # the rest of the page
    assert at.caption[0].value.startswith("页脚")
