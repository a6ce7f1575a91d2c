"""Registers the portal's own pages through the public plugin interface."""

from __future__ import annotations

from huizhi import HOST_API_VERSION, __version__, hookimpl
from huizhi.specs import PageSpec, Perm, PluginInfo, Theme, TileSpec


def _lazy(module: str, func: str = "render"):
    """Import a page's module when the page runs, so start-up stays fast."""

    def render(ctx):
        import importlib

        return getattr(importlib.import_module(f"huizhi_pages.{module}"), func)(ctx)

    render.__name__ = f"{module}_{func}"
    return render


@hookimpl
def huizhi_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="builtin_pages",
        title="平台内置页面",
        department=None,
        version=__version__,
        host_api=f">={HOST_API_VERSION}",
        description="首页、领导驾驶舱、台账中心与平台管理页面",
    )


@hookimpl
def huizhi_pages() -> list[PageSpec]:
    return [
        PageSpec("首页", "home", _lazy("home"), permission=Perm.SIGNED_IN, icon=":material/home:",
                 section="总览", order=0, default=True),
        PageSpec("领导驾驶舱", "cockpit", _lazy("cockpit"), permission=Perm.COCKPIT, icon=":material/monitoring:",
                 section="总览", order=1),
        PageSpec("台账上传与版本", "ledgers", _lazy("ledgers"), permission=Perm.LEDGER_READ,
                 icon=":material/table_view:", section="台账中心", order=0),
        PageSpec("报送情况", "submissions", _lazy("submissions"), permission=Perm.SIGNED_IN,
                 icon=":material/event_available:", section="台账中心", order=1),
        PageSpec("插件状态", "admin-plugins", _lazy("admin", "plugins_page"), permission=Perm.PLATFORM_ADMIN,
                 icon=":material/extension:", section="平台管理", order=0),
        PageSpec("角色映射与模拟登录", "admin-access", _lazy("admin", "access_page"), permission=Perm.PLATFORM_ADMIN,
                 icon=":material/admin_panel_settings:", section="平台管理", order=1),
        PageSpec("审计日志", "admin-audit", _lazy("admin", "audit_page"), permission=Perm.PLATFORM_ADMIN,
                 icon=":material/history:", section="平台管理", order=2),
        PageSpec("系统信息", "admin-system", _lazy("admin", "system_page"), permission=Perm.PLATFORM_ADMIN,
                 icon=":material/dns:", section="平台管理", order=3),
    ]


@hookimpl
def huizhi_tiles() -> list[TileSpec]:
    return [
        TileSpec(
            id="ledger_submissions",
            title="台账按期报送率",
            department=None,  # across departments; it reads version records, not ledger rows
            theme=Theme.GOVERNMENT,
            query=_lazy("submissions", "tile"),
            unit="%",
            drilldown="submissions",
            description="声明了填报周期的台账，本期各单位的报送比例（整表上传计入所有单位，单位上传计入该单位）。",
        )
    ]
