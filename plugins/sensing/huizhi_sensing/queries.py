"""SQL over the sensing ledger, shared by the pages and the cockpit tiles.

Every function takes a :class:`huizhi.context.LedgerReader` (already scoped to what the signed-in
person may see) and aggregates in the database: the browser never receives more than one page of
rows or a few thousand map points. Statements use only SQL that DuckDB and PostgreSQL share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from huizhi import district, kit
from huizhi.clock import beijing_today
from huizhi_sensing.schema import (
    CAMERA_TYPES,
    DEPARTMENT,
    INSPECTED_STATUSES,
    STATUSES,
    TYPE_NAMES,
)

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.context import LedgerReader

MAP_POINT_LIMIT = 5_000  # above this many devices the map shows grid cells instead of points


@dataclass(frozen=True)
class DeviceFilter:
    """What a person filters the ledger by. Built from widgets or from query parameters.

    Query parameters (a cockpit drill-down or a shared link) understood by every sensing page:
    ``street`` (镇街, comma-separated), ``department`` (权属单位 name or id), ``type`` (设备类型),
    ``status``, ``networked`` (是/否), ``overdue`` (1 = only overdue inspections), ``q`` (search).
    Plural spellings (``streets``, ``departments``, ``types``) are accepted too.
    """

    streets: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()  # department names, as stored in 权属单位
    statuses: tuple[str, ...] = ()
    networked: bool | None = None
    overdue_only: bool = False
    search: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DeviceFilter:
        return cls(**kit.filter_defaults(FILTERS, params))

    def to_params(self) -> dict[str, str]:
        return kit.filter_params(FILTERS, vars(self))


# The filter panel of the sensing pages, row by row: which widget, which query parameters (the
# first is the one links write) and which DeviceFilter field each fills.
FILTERS = (
    (
        kit.Pick(
            "streets", "所属镇街", district.street_names(), ("street", "streets"), placeholder="全部镇街"
        ),
        kit.Pick("types", "设备类型", TYPE_NAMES, ("type", "types", "device_type"), placeholder="全部类型"),
        kit.Departments(
            "departments", "权属单位", "owner_dept", ("department", "departments", "dept", "owner_dept")
        ),
    ),
    (
        kit.Pick("statuses", "运行状态", STATUSES, ("status", "statuses"), placeholder="全部状态"),
        kit.YesNo("networked", "是否联网", ("networked",), yes="已联网", no="未联网"),
        kit.Flag("overdue_only", "只看巡检逾期", ("overdue",)),
    ),
    (kit.Search("search", placeholder="城市码、设备名称、安装地点或建设项目中的文字"),),
)


# -- expressions --------------------------------------------------------------------------------


def due_date(reader: LedgerReader) -> sa.ColumnElement[Any]:
    """The date the next inspection is due: last inspection (or installation) + cycle."""
    c = reader.rows.c
    return sa.func.coalesce(c.last_inspection, c.install_date) + sa.cast(c.inspection_cycle, sa.Integer)


def inspected(reader: LedgerReader) -> sa.ColumnElement[bool]:
    """Devices that are meant to be on an inspection cycle (在用 and 故障)."""
    return reader.rows.c.status.in_(INSPECTED_STATUSES)


def networked_in_service(reader: LedgerReader) -> sa.ColumnElement[bool]:
    return sa.and_(inspected(reader), reader.rows.c.networked.is_(True))


def overdue(reader: LedgerReader, today: dt.date) -> sa.ColumnElement[bool]:
    """Inspection overdue on ``today``: an inspected device whose due date has passed."""
    return sa.and_(inspected(reader), due_date(reader) < today)


def conditions(
    reader: LedgerReader, flt: DeviceFilter, today: dt.date | None = None
) -> list[sa.ColumnElement[bool]]:
    today = today or beijing_today()
    c = reader.rows.c
    conds = reader.where(
        {
            "street": flt.streets,
            "device_type": flt.types,
            "owner_dept": flt.departments,
            "status": flt.statuses,
        },
        search=flt.search or None,
        search_columns=("device_id", "device_name", "location", "project"),
    )
    if flt.networked is not None:
        conds.append(c.networked.is_(flt.networked))
    if flt.overdue_only:
        conds.append(overdue(reader, today))
    return conds


# -- aggregates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    total: int
    cameras: int
    networked: int  # networked among the devices in service (在用/故障)
    inspected: int  # devices in service, i.e. on an inspection cycle (在用/故障)
    overdue: int
    faulty: int
    stopped: int
    pending: int
    types: int
    streets: int

    @property
    def iot(self) -> int:
        return self.total - self.cameras

    @property
    def networked_ratio(self) -> float | None:
        """联网率: networked share of the devices in service (停用 and 待验收 are not expected
        to be on the network)."""
        return self.networked / self.inspected if self.inspected else None

    @property
    def overdue_ratio(self) -> float | None:
        return self.overdue / self.inspected if self.inspected else None


def summary(
    reader: LedgerReader, conds: Iterable[sa.ColumnElement[bool]] = (), today: dt.date | None = None
) -> Summary:
    """Counts for a filtered set of devices, in one scan."""
    today = today or beijing_today()
    c = reader.rows.c
    count = sa.func.count
    stmt = (
        sa.select(
            count(),
            count().filter(c.device_type.in_(CAMERA_TYPES)),
            count().filter(networked_in_service(reader)),
            count().filter(inspected(reader)),
            count().filter(overdue(reader, today)),
            count().filter(c.status == "故障"),
            count().filter(c.status == "停用"),
            count().filter(c.status == "待验收"),
            count(sa.distinct(c.device_type)),
            count(sa.distinct(c.street)),
        )
        .select_from(reader.rows)
        .where(*conds)
    )
    row = reader.execute(stmt)[0]
    return Summary(*(int(v or 0) for v in row))


def breakdown(
    reader: LedgerReader,
    column: str,
    conds: Iterable[sa.ColumnElement[bool]] = (),
    today: dt.date | None = None,
) -> pd.DataFrame:
    """Per value of ``column``: devices, networked, on a cycle, overdue; most devices first."""
    today = today or beijing_today()
    c = reader.rows.c
    key = c[column]
    count = sa.func.count
    stmt = (
        sa.select(
            key.label(column),
            count().label("total"),
            count().filter(c.device_type.in_(CAMERA_TYPES)).label("cameras"),
            count().filter(networked_in_service(reader)).label("networked"),
            count().filter(inspected(reader)).label("inspected"),
            count().filter(overdue(reader, today)).label("overdue"),
        )
        .where(*conds)
        .group_by(key)
        .order_by(sa.desc("total"), key)
    )
    frame = reader.frame(stmt)
    # the ratio columns exist also when no row matches (a street and a department without devices)
    in_service = frame["inspected"].where(frame["inspected"] > 0)
    frame["networked_ratio"] = (frame["networked"] / in_service).fillna(0.0).astype("float64")
    frame["overdue_ratio"] = (frame["overdue"] / in_service).fillna(0.0).astype("float64")
    return frame


def rows_page(
    reader: LedgerReader,
    conds: Iterable[sa.ColumnElement[bool]],
    *,
    limit: int,
    offset: int,
    today: dt.date | None = None,
    order: str = "device_id",
) -> pd.DataFrame:
    """One page of devices with their next due date and days overdue (computed in SQL)."""
    today = today or beijing_today()
    due = due_date(reader)
    order_by = {
        "device_id": [reader.rows.c.device_id],
        "overdue": [due.asc(), reader.rows.c.device_id],
        "install_date": [reader.rows.c.install_date.desc(), reader.rows.c.device_id],
    }[order]
    stmt = (
        sa.select(
            reader.rows,
            sa.case((inspected(reader), due), else_=None).label("next_due"),
            sa.case((overdue(reader, today), sa.literal(today) - due), else_=None).label("days_overdue"),
        )
        .where(*conds)
        .order_by(*order_by)
        .limit(limit)
        .offset(offset)
    )
    return reader.frame(stmt)


@dataclass(frozen=True)
class MapData:
    frame: pd.DataFrame  # points (lon, lat, device_type, …) or cells (lon, lat, devices, …)
    aggregated: bool
    total: int
    cell_km: float = 0.0


def map_data(
    reader: LedgerReader, conds: Iterable[sa.ColumnElement[bool]], total: int, *, limit: int = MAP_POINT_LIMIT
) -> MapData:
    """Points when there are at most ``limit`` devices, otherwise a grid of cells (about 1 km,
    coarser when even the cells would exceed ``limit``) with counts, all computed in SQL."""
    conds = list(conds)
    c = reader.rows.c
    if total <= limit:
        stmt = sa.select(
            c.device_id,
            c.device_name,
            c.device_type,
            c.owner_dept,
            c.street,
            c.status,
            c.networked,
            c.lon,
            c.lat,
        ).where(*conds)
        return MapData(reader.frame(stmt), aggregated=False, total=total)
    cell = 0.01  # degrees; ≈ 0.85 km east-west and 1.1 km north-south at Daxing's latitude
    while True:
        gx, gy = sa.func.floor(c.lon / cell), sa.func.floor(c.lat / cell)
        stmt = (
            sa.select(
                sa.func.avg(c.lon).label("lon"),
                sa.func.avg(c.lat).label("lat"),
                sa.func.count().label("devices"),
                sa.func.count().filter(networked_in_service(reader)).label("networked"),
                sa.func.count().filter(inspected(reader)).label("in_service"),
                sa.func.count().filter(c.device_type.in_(CAMERA_TYPES)).label("cameras"),
                sa.func.min(c.street).label("street"),
            )
            .where(*conds)
            .group_by(gx, gy)
        )
        frame = reader.frame(stmt)
        if len(frame) <= limit or cell >= 0.08:
            frame["networked_ratio"] = (
                frame["networked"] / frame["in_service"].where(frame["in_service"] > 0)
            ).fillna(0.0)
            return MapData(frame, aggregated=True, total=total, cell_km=round(cell * 100, 1))
        cell *= 2


def as_of(reader: LedgerReader) -> dt.datetime | None:
    """When the current version of the ledger was committed (None: no version yet)."""
    return reader.updated_at


def steward_name() -> str:
    return district.department_name(DEPARTMENT)
