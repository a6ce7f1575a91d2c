"""The cockpit's palette: badge colours, hex colours and Streamlit icon names, one set everywhere
(cards, mini charts, plotly figures, Excel and snapshots)."""

from __future__ import annotations

from huizhi.cockpit.status import Status
from huizhi.specs import Theme

#: Streamlit badge colours and hex colours (charts, exports) per status: one palette everywhere.
STATUS_STYLE: dict[Status, tuple[str, str]] = {
    Status.MET: ("green", "#1E8E3E"),
    Status.ON_TRACK: ("blue", "#1A73E8"),
    Status.AT_RISK: ("orange", "#E37400"),
    Status.OVERDUE: ("red", "#D93025"),
    Status.STALE: ("violet", "#8E44AD"),
    Status.DATA_DROP: ("orange", "#B06000"),
    Status.NO_DATA: ("gray", "#80868B"),
    Status.MONITOR: ("gray", "#5F6B7A"),
    Status.ERROR: ("red", "#B3261E"),
    Status.DENIED: ("gray", "#9AA0A6"),
}

STATUS_ICON: dict[Status, str] = {
    Status.MET: ":material/check_circle:",
    Status.ON_TRACK: ":material/trending_up:",
    Status.AT_RISK: ":material/warning:",
    Status.OVERDUE: ":material/error:",
    Status.STALE: ":material/schedule:",
    Status.DATA_DROP: ":material/trending_down:",
    Status.NO_DATA: ":material/help:",
    Status.MONITOR: ":material/monitoring:",
    Status.ERROR: ":material/bug_report:",
    Status.DENIED: ":material/lock:",
}

#: One colour per theme (chapter of the plan), used for section headers and theme charts.
THEME_COLORS: dict[Theme, str] = {
    Theme.SENSING: "#1F6FB2",
    Theme.GOVERNMENT: "#7B4FB0",
    Theme.PUBLIC_SERVICE: "#178A6E",
    Theme.GOVERNANCE: "#C2571A",
    Theme.ECONOMY: "#B08A12",
}

THEME_ICONS: dict[Theme, str] = {
    Theme.SENSING: ":material/sensors:",
    Theme.GOVERNMENT: ":material/account_balance:",
    Theme.PUBLIC_SERVICE: ":material/diversity_3:",
    Theme.GOVERNANCE: ":material/location_city:",
    Theme.ECONOMY: ":material/trending_up:",
}

#: Categorical colours for breakdown charts (streets, departments, categories).
SERIES_COLORS = ("#1F6FB2", "#E37400", "#178A6E", "#7B4FB0", "#C2571A", "#5F6B7A", "#B08A12", "#D93025")


