"""The cockpit engine (领导驾驶舱), no Streamlit: one concern per module.

* :mod:`~huizhi.cockpit.status` — :class:`Status`, :class:`Assessment`, :func:`assess` and its rules;
* :mod:`~huizhi.cockpit.theme` — colours and Streamlit icon names per status and theme;
* :mod:`~huizhi.cockpit.filters` — the global filters' normal form and URL encoding;
* :mod:`~huizhi.cockpit.runner` — :class:`CockpitRunner` (``host.cockpit``): concurrent, isolated,
  cached tile runs, invalidation at commit, the optional commit watcher;
* :mod:`~huizhi.cockpit.pins` — each person's pinned tiles (table ``cockpit_pins``);
* :mod:`~huizhi.cockpit.charts` and :mod:`~huizhi.cockpit.export` — plotly figures, Excel and
  PNG/PDF snapshots (import them directly: they load plotly and openpyxl).

Plugins import none of this: tiles use :mod:`huizhi.specs`, :mod:`huizhi.fmt` and
:class:`huizhi.context.TileContext` (``ctx.filter_conditions``, ``ctx.today``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from huizhi.cockpit.filters import FILTER_LABELS, filters_from_params, filters_to_params, normalize_filters
from huizhi.cockpit.pins import load_pins, move_pin, save_pins, toggle_pin
from huizhi.cockpit.runner import (
    CockpitRunner,
    CockpitTileContext,
    InvalidTileValue,
    RunnerClosed,
    TileResult,
    status_counts,
)
from huizhi.cockpit.status import (
    Assessment,
    Status,
    assess,
    elapsed_fraction,
    expected_value,
    is_met,
    is_stale,
    progress_fraction,
)
from huizhi.cockpit.theme import SERIES_COLORS, STATUS_ICON, STATUS_STYLE, THEME_COLORS, THEME_ICONS

if TYPE_CHECKING:
    from huizhi.access import Identity
    from huizhi.context import Filters
    from huizhi.host import Host
    from huizhi.specs import TileSpec


def compute_tiles(
    host: Host,
    identity: Identity,
    tiles: Iterable[TileSpec] | None = None,
    filters: Filters | None = None,
    *,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
    timeout: float = 60.0,
    use_cache: bool = True,
) -> list[TileResult]:
    """``host.cockpit.compute(...)``: see :meth:`CockpitRunner.compute`."""
    return host.cockpit.compute(
        identity, tiles, filters, today=today, now=now, timeout=timeout, use_cache=use_cache
    )


__all__ = [
    "FILTER_LABELS",
    "SERIES_COLORS",
    "STATUS_ICON",
    "STATUS_STYLE",
    "THEME_COLORS",
    "THEME_ICONS",
    "Assessment",
    "CockpitRunner",
    "CockpitTileContext",
    "InvalidTileValue",
    "RunnerClosed",
    "Status",
    "TileResult",
    "assess",
    "compute_tiles",
    "elapsed_fraction",
    "expected_value",
    "filters_from_params",
    "filters_to_params",
    "is_met",
    "is_stale",
    "load_pins",
    "move_pin",
    "normalize_filters",
    "progress_fraction",
    "save_pins",
    "status_counts",
    "toggle_pin",
]
