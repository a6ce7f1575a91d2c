"""JSON logs (issue 13, point 7): one object per line, with the session, user and plugin of the
page or tile that was running, so a collector can tell whose failure a line is."""

from __future__ import annotations

import io
import json
import logging

import pytest
from plugin_fixtures import make_plugin
from streamlit.testing.v1 import AppTest

from huizhi.access import Grant, Identity, Role
from huizhi.cockpit import compute_tiles
from huizhi.config import load_settings
from huizhi.logs import JSON, JsonFormatter, configure_logging, log_context
from huizhi.specs import Theme, TileSpec, TileValue

LEADER = Identity("kc|leader-7", "区领导", frozenset({Grant(Role.LEADER)}))


@pytest.fixture
def json_lines():
    """The root logger's lines as parsed JSON objects (the formatter the product installs)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_the_format_is_a_setting_from_the_environment_or_the_file(tmp_path):
    assert load_settings({}).log_format == "text"
    assert load_settings({"HUIZHI_LOG_FORMAT": "JSON"}).log_format == "json"
    config = tmp_path / "huizhi.toml"
    config.write_text('[logging]\nformat = "json"\n', encoding="utf-8")
    assert load_settings({"HUIZHI_CONFIG": str(config)}).log_format == "json"
    assert load_settings({"HUIZHI_CONFIG": str(config), "HUIZHI_LOG_FORMAT": "text"}).log_format == "text"
    with pytest.raises(ValueError, match="HUIZHI_LOG_FORMAT / \\[logging\\] format must be 'text' or 'json'"):
        load_settings({"HUIZHI_LOG_FORMAT": "xml"})


def test_configure_logging_replaces_its_own_handler_only():
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    try:
        first = configure_logging(JSON)
        second = configure_logging("text")
        assert first not in root.handlers and second in root.handlers and foreign in root.handlers
    finally:
        root.removeHandler(second)
        root.removeHandler(foreign)


def test_context_nests_and_is_reset(json_lines):
    log = logging.getLogger("huizhi.test")
    with log_context(session="s1", user="u1"):
        with log_context(plugin="p1"):
            log.info("inner")
        log.warning("outer")
    log.error("outside")
    inner, outer, outside = json_lines()
    assert (inner["session"], inner["user"], inner["plugin"], inner["message"]) == ("s1", "u1", "p1", "inner")
    assert "plugin" not in outer and outer["user"] == "u1" and outer["level"] == "WARNING"
    assert not {"session", "user", "plugin"} & outside.keys() and outside["logger"] == "huizhi.test"
    with pytest.raises(ValueError, match="unknown log context fields"), log_context(password="x"):
        pass


def test_a_tile_query_logs_with_its_plugin_tile_and_user(make_host, json_lines):
    plugin_log = logging.getLogger("huizhi_test_tiles.plugin")

    def chatty(ctx):
        plugin_log.info("counting devices")
        return TileValue(3)

    def broken(ctx):
        raise ZeroDivisionError("no devices")

    tiles = [
        TileSpec(id="chatty", title="会记日志的指标", department="jxj", theme=Theme.SENSING, query=chatty),
        TileSpec(id="broken", title="会出错的指标", department="jxj", theme=Theme.SENSING, query=broken),
    ]
    host = make_host(extra_plugins=[("logtiles", make_plugin("logtiles", tiles=tiles))])
    results = {r.tile.id: r for r in compute_tiles(host, LEADER, use_cache=False)}
    assert results["chatty"].value is not None and results["broken"].error
    lines = json_lines()
    said = next(line for line in lines if line["message"] == "counting devices")
    assert (said["plugin"], said["tile"], said["user"]) == ("logtiles", "chatty", "kc|leader-7")
    assert said["logger"] == "huizhi_test_tiles.plugin" and said["level"] == "INFO"
    failed = next(line for line in lines if line["message"].startswith("tile broken of plugin logtiles failed"))
    assert (failed["plugin"], failed["tile"], failed["level"]) == ("logtiles", "broken", "ERROR")
    assert "ZeroDivisionError: no devices" in failed["exception"]


def _page_script(database_url: str, log_file: str) -> None:
    import logging

    from huizhi import hookimpl
    from huizhi.access import Grant, Identity, Role
    from huizhi.app import _page_runner
    from huizhi.config import load_settings
    from huizhi.host import create_host
    from huizhi.logs import JsonFormatter
    from huizhi.specs import PageSpec, PluginInfo

    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    class Pages:
        @hookimpl
        def huizhi_plugin_info(self):
            return PluginInfo(name="logpages", title="日志插件", department="jxj", version="0.1", host_api=">=1.0")

        @hookimpl
        def huizhi_pages(self):
            def render(ctx):
                logging.getLogger("huizhi_logpages").info("rendering for %s", ctx.identity.name)
                raise RuntimeError("page broke")

            return [PageSpec("日志页面", "logged", render, department="jxj")]

    host = create_host(load_settings({}, database_url=database_url), extra_plugins=[("logpages", Pages())],
                       use_entry_points=False)
    try:
        identity = Identity("kc|staff-3", "王科员", frozenset({Grant(Role.STAFF, "jxj")}))
        spec, plugin = host.registry.pages["logged"]
        _page_runner(host, identity, spec, plugin, {})()
    finally:
        root.removeHandler(handler)
        handler.close()
        host.dispose()


def test_a_page_run_logs_with_its_session_user_plugin_and_page(database_url, tmp_path):
    log_file = tmp_path / "portal.jsonl"
    at = AppTest.from_function(_page_script, args=(database_url, str(log_file)), default_timeout=30).run()
    assert not at.exception and len(at.error) == 1
    lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    page_lines = [line for line in lines if line.get("page") == "logged"]
    said = next(line for line in page_lines if line["logger"] == "huizhi_logpages")
    assert said["message"] == "rendering for 王科员"  # non-ASCII kept readable (ensure_ascii=False)
    assert (said["user"], said["plugin"]) == ("kc|staff-3", "logpages")
    assert said["session"]  # AppTest runs the script in a real Streamlit session
    failed = next(line for line in page_lines if line["logger"] == "huizhi.app")
    assert failed["level"] == "ERROR" and "RuntimeError: page broke" in failed["exception"]
    assert failed["session"] == said["session"]
    outside = [line for line in lines if "page" not in line]
    assert all("user" not in line for line in outside)  # the context ends with the page run
