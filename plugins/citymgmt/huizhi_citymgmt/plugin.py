"""huizhi plugin: 区城市管理委 城市管理案件台账 (entry point ``citymgmt``).

One ledger (``city_cases``), three pages and five cockpit tiles for the closed loop
发现-派单-处置-反馈-考核 (行动计划第274行) and 门前三包 (第266行). Upload, template, validation,
history and rollback come from the host.
"""

from __future__ import annotations

from huizhi import hookimpl
from huizhi.specs import LedgerSpec, PageSpec, Perm, PluginInfo, TileSpec
from huizhi_citymgmt import __version__, pages
from huizhi_citymgmt.schema import CASES_LEDGER, DEPARTMENT


@hookimpl
def huizhi_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="citymgmt",
        title="城市管理案件闭环",
        department=DEPARTMENT,
        version=__version__,
        host_api=">=1.0,<2",
        description="城市管理问题发现-派单-处置-反馈-考核全闭环与“门前三包”问题管理（行动计划第172、266、274行）。",
    )


@hookimpl
def huizhi_ledgers() -> list[LedgerSpec]:
    return [CASES_LEDGER]


@hookimpl
def huizhi_pages() -> list[PageSpec]:
    return [
        PageSpec(
            title="城市管理案件",
            url_path="citymgmt-cases",
            render=pages.render_cases,
            department=DEPARTMENT,
            icon=":material/assignment:",
            order=10,
        ),
        PageSpec(
            title="闭环考核",
            url_path="citymgmt-loop",
            render=pages.render_loop,
            department=DEPARTMENT,
            icon=":material/published_with_changes:",
            order=20,
        ),
        # Handling departments see the cases dispatched to them (the host limits the rows).
        PageSpec(
            title="本单位承办案件",
            url_path="citymgmt-my-cases",
            render=pages.render_shared,
            department=None,
            section="全区共享台账",
            permission=Perm.LEDGER_READ,
            icon=":material/assignment_ind:",
            order=50,
        ),
    ]


@hookimpl
def huizhi_tiles() -> list[TileSpec]:
    from huizhi_citymgmt.tiles import TILES

    return list(TILES)
