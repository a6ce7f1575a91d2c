"""The portal shell: error boundaries around plugin pages and the host-side permission check."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from huizhi.config import load_settings
from huizhi.host import create_host


def _script(database_url: str, dept: str) -> None:
    import streamlit as st

    from huizhi import hookimpl
    from huizhi.access import Grant, Identity, Role
    from huizhi.app import _page_runner
    from huizhi.config import load_settings
    from huizhi.host import create_host
    from huizhi.specs import PageSpec, PluginInfo

    class Broken:
        @hookimpl
        def huizhi_plugin_info(self):
            return PluginInfo(name="brokenpage", title="坏插件", department="jxj", version="0.1", host_api=">=1.0")

        @hookimpl
        def huizhi_pages(self):
            def render(ctx):
                raise ValueError("boom inside the plugin")

            return [PageSpec("坏页面", "bad", render, department="jxj")]

    host = create_host(load_settings({}, database_url=database_url), extra_plugins=[("brokenpage", Broken())],
                       use_entry_points=False)
    identity = Identity(f"staff-{dept}", "员工", frozenset({Grant(Role.STAFF, dept)}))
    spec, plugin = host.registry.pages["bad"]
    _page_runner(host, identity, spec, plugin, {})()
    st.write("after the broken page")
    events = host.audit.search()
    st.write("audit:" + ",".join(f"{e.action}:{e.target}" for e in events))
    host.dispose()


def test_exception_in_a_page_is_contained_and_names_the_plugin(database_url):
    at = AppTest.from_function(_script, args=(database_url, "jxj"), default_timeout=30).run()
    assert not at.exception
    assert len(at.error) == 1
    assert "坏页面" in at.error[0].value and "brokenpage" in at.error[0].value
    assert any("ValueError: boom inside the plugin" in c.value for c in at.code)
    texts = [m.value for m in at.markdown]
    assert "after the broken page" in texts
    assert any("page.view:page:bad" in t for t in texts)


def test_page_of_another_department_is_denied_and_audited(database_url):
    at = AppTest.from_function(_script, args=(database_url, "gaj"), default_timeout=30).run()
    assert not at.exception
    assert "没有访问此页面的权限" in at.error[0].value
    assert not at.code  # the plugin's render never ran
    assert any("access.denied:page:bad" in m.value for m in at.markdown)


def _down_script(database_url: str) -> None:
    import sqlalchemy as sa

    from huizhi import hookimpl
    from huizhi.access import Grant, Identity, Role
    from huizhi.app import _page_runner
    from huizhi.config import load_settings
    from huizhi.host import create_host
    from huizhi.specs import PageSpec, PluginInfo

    class Reads:
        @hookimpl
        def huizhi_plugin_info(self):
            return PluginInfo(name="reads", title="读库插件", department="jxj", version="0.1", host_api=">=1.0")

        @hookimpl
        def huizhi_pages(self):
            def render(ctx):  # what a query does when the server has gone away
                raise sa.exc.OperationalError("select 1", {}, ConnectionRefusedError("connection refused"))

            return [PageSpec("读库页面", "reads", render, department="jxj")]

    host = create_host(load_settings({}, database_url=database_url), extra_plugins=[("reads", Reads())],
                       use_entry_points=False)
    spec, plugin = host.registry.pages["reads"]
    _page_runner(host, Identity("s", "员工", frozenset({Grant(Role.STAFF, "jxj")})), spec, plugin, {})()
    host.dispose()


def test_database_lost_mid_session_is_not_blamed_on_the_plugin(database_url):
    at = AppTest.from_function(_down_script, args=(database_url,), default_timeout=30).run()
    assert not at.exception
    assert "数据库暂时无法连接，数据未丢失" in at.error[0].value
    assert "reads" not in at.error[0].value and not at.code


def _widget_script(database_url: str, kind: str) -> None:
    import streamlit as st

    from huizhi import hookimpl
    from huizhi.access import AccessDenied, Grant, Identity, Role
    from huizhi.app import _page_runner
    from huizhi.config import load_settings
    from huizhi.host import create_host
    from huizhi.specs import PageSpec, PluginInfo

    def render(ctx):
        if kind == "duplicate-key":  # the commonest plugin bug: two widgets with one key
            st.button("一", key="same")
            st.button("二", key="same")
        elif kind == "denied":
            raise AccessDenied("request", "department:gaj", "您只能查看本部门的数据。")
        elif kind == "denied-by-host":  # refused through ctx.deny: already audited there
            raise ctx.deny("department:gaj", "query parameter", "您只能查看本部门的数据。")
        elif kind == "stop":
            st.write("before stop")
            st.stop()  # Streamlit's control flow passes through the boundary

    class Widgets:
        @hookimpl
        def huizhi_plugin_info(self):
            return PluginInfo(name="widgety", title="控件插件", department="jxj", version="0.1", host_api=">=1.0")

        @hookimpl
        def huizhi_pages(self):
            return [PageSpec("控件页面", "widgets", render, department="jxj")]

    host = create_host(load_settings({}, database_url=database_url), extra_plugins=[("widgety", Widgets())],
                       use_entry_points=False)
    try:
        spec, plugin = host.registry.pages["widgets"]
        _page_runner(host, Identity("s", "员工", frozenset({Grant(Role.STAFF, "jxj")})), spec, plugin, {})()
        st.write("the rest of the portal still runs")
    finally:
        host.dispose()


def test_duplicate_widget_key_is_contained_and_names_the_plugin(database_url):
    at = AppTest.from_function(_widget_script, args=(database_url, "duplicate-key"), default_timeout=30).run()
    assert not at.exception  # not Streamlit's own red exception box
    assert len(at.error) == 1
    assert "控件页面" in at.error[0].value and "widgety" in at.error[0].value
    assert any("DuplicateWidgetID" in c.value or "StreamlitDuplicateElementKey" in c.value for c in at.code)
    assert "the rest of the portal still runs" in [m.value for m in at.markdown]


def test_access_denied_from_a_page_shows_its_message(database_url):
    at = AppTest.from_function(_widget_script, args=(database_url, "denied"), default_timeout=30).run()
    assert not at.exception and not at.error
    assert at.warning[0].value == "您只能查看本部门的数据。"
    at = AppTest.from_function(_widget_script, args=(database_url, "denied-by-host"), default_timeout=30).run()
    assert at.warning[0].value == "您只能查看本部门的数据。"
    with create_host(load_settings({}, database_url=database_url), use_entry_points=False) as host:
        denials = host.audit.search(action="access.denied", actor="s")
    # each refusal audited exactly once: the one the page raised itself by the boundary
    assert sorted(json.loads(e.detail)["how"] for e in denials) == ["query parameter", "raised by page"]
    assert all(e.target == "department:gaj" and e.outcome == "denied" for e in denials)


def test_streamlit_control_flow_passes_through_the_boundary(database_url):
    at = AppTest.from_function(_widget_script, args=(database_url, "stop"), default_timeout=30).run()
    assert not at.exception and not at.error
    texts = [m.value for m in at.markdown]
    assert "before stop" in texts and "the rest of the portal still runs" not in texts
