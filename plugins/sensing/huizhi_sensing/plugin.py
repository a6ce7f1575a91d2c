"""huizhi plugin: 区经济和信息化局 感知前端管理台账 (entry point ``sensing``).

Declares one ledger (``sensing_devices``), four pages and five cockpit tiles. Upload, template,
validation, history and rollback pages for the ledger come from the host, built from the
ledger's declaration.
"""

from __future__ import annotations

from huizhi import hookimpl
from huizhi.specs import LedgerSpec, PageSpec, Perm, PluginInfo, TileSpec
from huizhi_sensing import __version__, pages
from huizhi_sensing.schema import DEPARTMENT, SENSING_LEDGER


@hookimpl
def huizhi_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="sensing",
        title="感知前端管理台账",
        department=DEPARTMENT,
        version=__version__,
        host_api=">=1.0,<2",
        description="全区视频监控与物联感知设备的统一建账、城市码标识、巡检管理与感知“时空一张图”（行动计划第103–108行）。",
    )


@hookimpl
def huizhi_ledgers() -> list[LedgerSpec]:
    return [SENSING_LEDGER]


@hookimpl
def huizhi_pages() -> list[PageSpec]:
    return [
        PageSpec(
            title="感知前端台账",
            url_path="sensing-ledger",
            render=pages.render_ledger,
            department=DEPARTMENT,
            icon=":material/sensors:",
            order=10,
            default=False,
        ),
        PageSpec(
            title="感知时空一张图",
            url_path="sensing-map",
            render=pages.render_map,
            department=DEPARTMENT,
            icon=":material/map:",
            order=20,
        ),
        PageSpec(
            title="感知前端巡检",
            url_path="sensing-inspections",
            render=pages.render_inspections,
            department=DEPARTMENT,
            icon=":material/fact_check:",
            order=30,
        ),
        # Every department registers and inspects its own devices in the district ledger
        # (分级分权, line 106): this page is open to anyone who may read ledger rows, and the host
        # limits the rows to the reader's own department.
        PageSpec(
            title="本单位感知前端",
            url_path="sensing-my-devices",
            render=pages.render_shared,
            department=None,
            section="全区共享台账",
            permission=Perm.LEDGER_READ,
            icon=":material/sensors:",
            order=40,
        ),
    ]


@hookimpl
def huizhi_tiles() -> list[TileSpec]:
    from huizhi_sensing.tiles import TILES

    return list(TILES)
