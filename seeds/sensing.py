"""Demo rows for the sensing ledger (``sensing_devices``) at the plan's baseline scale.

About 3万 cameras and 13万 IoT devices (line 11), less the ones not yet registered (the census of
line 104 is not complete), spread over the district's streets and towns around their centres,
installed 2015 to today, with a realistic backlog of overdue inspections. Deterministic: the
same ``seed``, ``scale`` and ``as_of`` give the same table.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

from huizhi import district
from huizhi_seeds.daxing import (
    COMMUNITIES,
    DEVICE_KINDS,
    OVERDUE_SHARE,
    RIVERS,
    ROAD_SPOTS,
    ROADS,
    RURAL_WEIGHTS,
    SPREAD_DEG,
    URBAN_WEIGHTS,
    VILLAGES,
    DeviceKind,
)

if TYPE_CHECKING:
    import pyarrow as pa

LEDGER_ID = "sensing_devices"
EPOCH = np.datetime64("1970-01-01", "D")
PENDING_DAYS = 120  # devices installed this recently may still await acceptance (待验收)


def _days(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - EPOCH).astype(int))


def _street_weights(setting: str) -> np.ndarray:
    names = district.street_names()
    urban = np.array([URBAN_WEIGHTS.get(n, 1.0) for n in names])
    rural = np.array([RURAL_WEIGHTS.get(n, 1.0) for n in names])
    weights = {"urban": urban, "rural": rural, "mixed": urban / urban.sum() + rural / rural.sum()}[setting]
    return weights / weights.sum()


def _locations(rng: np.random.Generator, kind: DeviceKind, street_idx: np.ndarray) -> list[str]:
    n = len(street_idx)
    if kind.place == "road":
        roads = rng.integers(0, len(ROADS), n)
        cross = rng.integers(0, len(ROADS), n)
        spots = rng.integers(0, len(ROAD_SPOTS), n)
        numbers = rng.integers(1, 300, n)
        return [
            ROADS[r] + ROAD_SPOTS[s].format(cross=ROADS[c] if c != r else ROADS[(c + 1) % len(ROADS)], n=num)
            for r, c, s, num in zip(
                roads.tolist(), cross.tolist(), spots.tolist(), numbers.tolist(), strict=True
            )
        ]
    if kind.place == "community":
        names = rng.integers(0, len(COMMUNITIES), n)
        buildings = rng.integers(1, 40, n)
        return [
            f"{COMMUNITIES[c]}小区{b}号楼" for c, b in zip(names.tolist(), buildings.tolist(), strict=True)
        ]
    if kind.place == "village":
        streets = district.street_names()
        names = rng.integers(0, len(VILLAGES), n)
        houses = rng.integers(1, 400, n)
        return [
            f"{streets[s].removesuffix('镇').removesuffix('街道')}{VILLAGES[v]}村{h}号"
            for s, v, h in zip(street_idx.tolist(), names.tolist(), houses.tolist(), strict=True)
        ]
    rivers = rng.integers(0, len(RIVERS), n)
    km = rng.integers(1, 30, n)
    return [f"{RIVERS[r]}K{k}断面" for r, k in zip(rivers.tolist(), km.tolist(), strict=True)]


def _kind_rows(
    rng: np.random.Generator, kind: DeviceKind, n: int, as_of: dt.date, dept_overdue: dict[str, float]
) -> dict[str, object]:
    streets = district.STREETS
    lon_lo, lon_hi = district.LON_RANGE
    lat_lo, lat_hi = district.LAT_RANGE

    owners = np.array([o for o, _ in kind.owners])
    weights = np.array([w for _, w in kind.owners])
    owner = owners[rng.choice(len(owners), n, p=weights / weights.sum())]

    street_idx = rng.choice(len(streets), n, p=_street_weights(kind.setting))
    centre_lon = np.array([s.lon for s in streets])[street_idx]
    centre_lat = np.array([s.lat for s in streets])[street_idx]
    spread = np.array([SPREAD_DEG[s.kind] for s in streets])[street_idx]
    margin = 0.002
    lon = np.clip(centre_lon + rng.normal(0, 1, n) * spread, lon_lo + margin, lon_hi - margin).round(6)
    lat = np.clip(centre_lat + rng.normal(0, 1, n) * spread * 0.8, lat_lo + margin, lat_hi - margin).round(6)

    # Installed between 1 January of the kind's first year and today, more of them recently.
    start, end = _days(dt.date(max(kind.first_year, 2015), 1, 1)), _days(as_of)
    u = np.where(rng.random(n) < 0.5, rng.random(n), np.sqrt(rng.random(n)))
    installed = (start + u * (end - start)).astype(np.int64)
    age = end - installed

    # Status: recent devices await acceptance; older ones are occasionally faulty or retired.
    r = rng.random(n)
    status = np.full(n, "在用", dtype=object)
    pending = (age < PENDING_DAYS) & (r < 0.8)
    status[pending] = "待验收"
    old = age > 3 * 365
    status[~pending & (r > 0.955)] = "故障"
    status[~pending & old & (r > 0.93) & (r <= 0.955)] = "停用"

    in_service = (status == "在用") | (status == "故障")
    p_net = np.select(
        [status == "在用", status == "故障", status == "待验收"], [kind.networked, 0.6, 0.3], 0.04
    )
    networked = rng.random(n) < p_net

    # Last inspection: within the cycle for most devices in service, up to three cycles late for
    # the overdue share (which differs by owner), at acceptance for some pending devices.
    cycle = np.full(n, kind.cycle_days, dtype=np.int64)
    late_p = np.array([dept_overdue[o] for o in owner])
    late = rng.random(n) < late_p
    since = np.where(late, cycle * rng.uniform(1.02, 3.0, n), cycle * rng.uniform(0.0, 0.98, n)).astype(
        np.int64
    )
    inspected = np.maximum(end - since, installed)
    stopped_at = installed + (age * rng.uniform(0.3, 0.9, n)).astype(np.int64)
    last = np.where(
        in_service, inspected, np.where(status == "停用", stopped_at, installed + np.minimum(age, 7))
    )
    has_last = in_service | (status == "停用") | (rng.random(n) < 0.25)
    # A few devices in service were never inspected after installation (a soft-rule warning).
    has_last &= ~(in_service & (rng.random(n) < 0.004))

    serial = rng.choice(90_000_000, n, replace=False) + 10_000_000
    ids = [f"110115-{kind.code}-{s:08d}" for s in serial.tolist()]
    locations = _locations(rng, kind, street_idx)
    numbers = rng.integers(1, 5, n)
    names = [f"{loc}{kind.name}{k}号" for loc, k in zip(locations, numbers.tolist(), strict=True)]
    projects = np.array(kind.projects, dtype=object)[rng.integers(0, len(kind.projects), n)]
    return {
        "device_id": ids,
        "device_name": names,
        "device_type": np.full(n, kind.name, dtype=object),
        "owner_dept": owner.astype(object),
        "street": np.array(district.street_names(), dtype=object)[street_idx],
        "location": locations,
        "lon": lon,
        "lat": lat,
        "install_date": installed,
        "networked": networked,
        "status": status,
        "last_inspection": np.where(has_last, last, -1),
        "inspection_cycle": cycle,
        "project": projects,
    }


def generate_sensing_devices(
    *, seed: int = 20221009, scale: float = 1.0, as_of: dt.date | None = None
) -> pa.Table:
    """The sensing ledger's demo rows as an Arrow table (about 15.3万 rows at ``scale=1``); ``as_of`` defaults to today in Beijing."""
    import pyarrow as pa

    from huizhi.clock import beijing_today

    as_of = as_of or beijing_today()
    rng = np.random.default_rng(seed)
    owners = sorted({o for kind in DEVICE_KINDS for o, _ in kind.owners})
    # Some owners keep up with inspections better than others (0.4x to 1.8x the district share).
    factors = rng.uniform(0.4, 1.8, len(owners))
    dept_overdue = {o: float(min(0.6, OVERDUE_SHARE * f)) for o, f in zip(owners, factors, strict=True)}

    parts: list[dict[str, object]] = []
    for kind in DEVICE_KINDS:
        n = max(1, round(kind.built * kind.registered * scale))
        parts.append(_kind_rows(rng, kind, n, as_of, dept_overdue))

    columns: dict[str, object] = {}
    for name in parts[0]:
        values = [p[name] for p in parts]
        columns[name] = (
            np.concatenate(values)
            if isinstance(values[0], np.ndarray)
            else [v for part in values for v in part]
        )
    # Shuffle so the table is not grouped by kind (as a real consolidated ledger would not be).
    order = rng.permutation(len(columns["device_id"]))

    def take(name: str) -> np.ndarray:
        return np.asarray(columns[name], dtype=object if not isinstance(columns[name], np.ndarray) else None)[
            order
        ]

    last = take("last_inspection").astype(np.int64)
    return pa.table(
        {
            "device_id": pa.array(take("device_id"), pa.string()),
            "device_name": pa.array(take("device_name"), pa.string()),
            "device_type": pa.array(take("device_type"), pa.string()),
            "owner_dept": pa.array(take("owner_dept"), pa.string()),
            "street": pa.array(take("street"), pa.string()),
            "location": pa.array(take("location"), pa.string()),
            "lon": pa.array(take("lon").astype(np.float64), pa.float64()),
            "lat": pa.array(take("lat").astype(np.float64), pa.float64()),
            "install_date": pa.array(take("install_date").astype(np.int32), pa.int32()).cast(pa.date32()),
            "networked": pa.array(take("networked").astype(bool), pa.bool_()),
            "status": pa.array(take("status"), pa.string()),
            "last_inspection": pa.array(last.astype(np.int32), pa.int32(), mask=last < 0).cast(pa.date32()),
            "inspection_cycle": pa.array(take("inspection_cycle").astype(np.int64), pa.int64()),
            "project": pa.array(take("project"), pa.string()),
        }
    )
