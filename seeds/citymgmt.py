"""Demo rows for the city-management case ledger (``city_cases``).

Cases run the closed loop of the plan (发现-派单-处置-反馈-考核, line 274; 门前三包
登记-核查-下派-整改反馈-核实结案, line 266; 热线+网格, line 172): found by grid staff, the 12345
hotline, video AI or patrols from January 2023 to today, dispatched to the handling department
with a time limit, closed on time or late, and rated by the citizen when the hotline calls back.
Deterministic: the same ``seed``, ``scale`` and ``as_of`` give the same table.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

from huizhi import district
from huizhi_seeds.daxing import (
    CASE_CATEGORIES,
    CASE_SOURCES,
    CASES_PER_MONTH,
    CASES_START,
    ON_TIME_BY_YEAR,
    ROADS,
    URBAN_WEIGHTS,
)

if TYPE_CHECKING:
    import pyarrow as pa

LEDGER_ID = "city_cases"
EPOCH = np.datetime64("1970-01-01", "D")
SUMMER = (6, 7, 8)
WINTER = (11, 12, 1, 2, 3)


def _days(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - EPOCH).astype(int))


def generate_city_cases(
    *, seed: int = 20221009, scale: float = 1.0, as_of: dt.date | None = None
) -> pa.Table:
    """The case ledger's demo rows as an Arrow table (about 8万 rows at ``scale=1`` by late 2026); ``as_of`` defaults to today in Beijing."""
    import pyarrow as pa

    from huizhi.clock import beijing_today

    as_of = as_of or beijing_today()
    rng = np.random.default_rng(seed + 1)  # not the sensing stream: the ledgers are independent
    start, end = _days(CASES_START), _days(as_of)
    days = np.arange(start, end + 1)
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]").astype(int) % 12 + 1
    years = dates.astype("datetime64[Y]").astype(int) + 1970

    # How many cases a day: more in summer, fewer at Spring Festival, slowly growing.
    weight = 1.0 + 0.25 * np.isin(months, SUMMER) - 0.3 * (months == 2) + 0.06 * (years - 2023)
    n_months = len(days) / 30.44
    n = max(1, round(CASES_PER_MONTH * n_months * scale))
    found = rng.choice(days, n, p=weight / weight.sum())
    found.sort()
    found_month = found.astype("datetime64[D]").astype("datetime64[M]")
    month_num = found_month.astype(int) % 12 + 1
    year = found_month.astype("datetime64[Y]").astype(int) + 1970

    # Category, with seasonal ones mostly in their season.
    cat_w = np.array([c.weight for c in CASE_CATEGORIES])
    cat = rng.choice(len(CASE_CATEGORIES), n, p=cat_w / cat_w.sum())
    season = np.array([c.season for c in CASE_CATEGORIES], dtype=object)[cat]
    off_season = ((season == "summer") & ~np.isin(month_num, SUMMER)) | (
        (season == "winter") & ~np.isin(month_num, WINTER)
    )
    plain = np.array([i for i, c in enumerate(CASE_CATEGORIES) if not c.season])
    plain_w = cat_w[plain] / cat_w[plain].sum()
    redraw = off_season & (rng.random(n) < 0.85)
    cat[redraw] = rng.choice(plain, int(redraw.sum()), p=plain_w)

    streets = np.array(district.street_names(), dtype=object)
    street_w = np.array([URBAN_WEIGHTS.get(s, 1.0) for s in streets])
    street = streets[rng.choice(len(streets), n, p=street_w / street_w.sum())]

    # Source: video AI finds a growing share of cases over the years.
    src_names = [s for s, _ in CASE_SOURCES]
    base = np.array([w for _, w in CASE_SOURCES])
    ai = src_names.index("视频AI")
    r = rng.random(n)
    source = np.empty(n, dtype=object)
    for y in np.unique(year):
        w = base.copy()
        w[ai] = base[ai] * (0.6 + 0.3 * (y - 2023))
        w /= w.sum()
        sel = year == y
        source[sel] = np.array(src_names, dtype=object)[
            np.searchsorted(np.cumsum(w), r[sel], side="right").clip(0, 3)
        ]

    # Dispatch: to the category's handling department, the same day or a day or two later.
    unit = np.empty(n, dtype=object)
    limit = np.empty(n, dtype=np.int64)
    problems = np.empty(n, dtype=object)
    for i, c in enumerate(CASE_CATEGORIES):
        sel = cat == i
        k = int(sel.sum())
        if not k:
            continue
        names = np.array([u for u, _ in c.units], dtype=object)
        uw = np.array([w for _, w in c.units])
        unit[sel] = names[rng.choice(len(names), k, p=uw / uw.sum())]
        limit[sel] = c.limit_days
        problems[sel] = np.array(c.problems, dtype=object)[rng.integers(0, len(c.problems), k)]
    delay = rng.choice([0, 1, 2], n, p=[0.7, 0.25, 0.05])
    dispatched = found + delay
    deadline = dispatched + limit

    # Handling: on time with a probability that improves by year and differs by department.
    units = sorted(set(unit.tolist()))
    unit_factor = dict(zip(units, rng.uniform(0.96, 1.03, len(units)), strict=True))
    p_on_time = np.array([ON_TIME_BY_YEAR.get(int(y), 0.95) for y in year]) * np.array(
        [unit_factor[u] for u in unit]
    )
    on_time = rng.random(n) < np.minimum(p_on_time, 0.995)
    handle = np.where(
        on_time,
        np.floor(rng.uniform(0.1, 1.0, n) * limit).astype(np.int64),
        limit + 1 + rng.geometric(0.2, n),
    )
    # About 1% are hard cases (疑难案件) that stay open for weeks or months.
    stuck = rng.random(n) < 0.01
    handle = np.where(stuck, limit + rng.integers(20, 150, n), handle)
    closed = dispatched + handle

    # State on ``as_of``: not yet dispatched, being handled, reported back, or closed.
    is_closed = closed <= end
    not_dispatched = dispatched > end
    status = np.where(is_closed, "已结案", np.where(closed - end <= 1, "已反馈", "处置中")).astype(object)
    status[not_dispatched] = "待派单"

    # Satisfaction: the hotline calls back on most closed hotline cases; few others are rated.
    rated = is_closed & np.where(source == "12345热线", rng.random(n) < 0.9, rng.random(n) < 0.1)
    s = rng.random(n)
    unhappy = np.where(on_time, 0.05, 0.22)
    satisfaction = np.where(s < unhappy, "不满意", np.where(s < unhappy + 0.12, "基本满意", "满意")).astype(
        object
    )
    satisfaction[~rated] = None

    # Case id: AJ + year and month found + sequence within the month.
    month_key = found_month.astype(int)
    first = np.searchsorted(month_key, month_key, side="left")
    seq = np.arange(n) - first + 1
    yyyymm = (year * 100 + month_num).tolist()
    case_ids = [f"AJ{m}-{q:06d}" for m, q in zip(yyyymm, seq.tolist(), strict=True)]
    roads = rng.integers(0, len(ROADS), n)
    numbers = rng.integers(1, 300, n)
    descriptions = [
        f"{ROADS[rd]}{no}号附近{p}"
        for rd, no, p in zip(roads.tolist(), numbers.tolist(), problems.tolist(), strict=True)
    ]

    def date_array(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
        return pa.array(values.astype(np.int32), pa.int32(), mask=mask).cast(pa.date32())

    return pa.table(
        {
            "case_id": pa.array(case_ids, pa.string()),
            "category": pa.array(np.array([c.name for c in CASE_CATEGORIES], dtype=object)[cat], pa.string()),
            "description": pa.array(descriptions, pa.string()),
            "street": pa.array(street, pa.string()),
            "source": pa.array(source, pa.string()),
            "found_date": date_array(found),
            "dispatch_unit": pa.array(unit, pa.string(), mask=not_dispatched),
            "dispatch_date": date_array(dispatched, not_dispatched),
            "deadline": date_array(deadline, not_dispatched),
            "closed_date": date_array(closed, ~is_closed),
            "status": pa.array(status, pa.string()),
            "satisfaction": pa.array(satisfaction, pa.string()),
        }
    )
