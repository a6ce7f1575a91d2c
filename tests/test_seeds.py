"""Demo data (huizhi_seeds): deterministic, inside the district, valid by the ledgers' own rules,
at the plan's scale, and loaded as version 1 by ``load_demo``."""

from __future__ import annotations

import datetime as dt
import re

import huizhi_citymgmt.plugin as citymgmt_plugin
import huizhi_sensing.plugin as sensing_plugin
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from huizhi_citymgmt.schema import CASES_LEDGER
from huizhi_sensing import plan
from huizhi_sensing.schema import DEVICE_TYPES, SENSING_LEDGER

from huizhi import district
from huizhi.specs import LedgerSpec
from huizhi_seeds import GENERATORS, daxing, generate, load_demo

AS_OF = dt.date(2026, 10, 31)  # a fixed day in the past: the data must not depend on today
SPECS: dict[str, LedgerSpec] = {SENSING_LEDGER.id: SENSING_LEDGER, CASES_LEDGER.id: CASES_LEDGER}
PLUGINS = [("sensing", sensing_plugin), ("citymgmt", citymgmt_plugin)]


def typed(table: pa.Table):
    """The table as the host's validation sees an upload: pandas nullable dtypes."""
    import pandas as pd

    mapping = {
        pa.string(): pd.StringDtype("pyarrow"),
        pa.int64(): pd.Int64Dtype(),
        pa.float64(): pd.Float64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    frame = table.to_pandas(types_mapper=mapping.get, date_as_object=False, coerce_temporal_nanoseconds=False)
    for name in frame.columns:
        if str(frame[name].dtype).startswith("datetime64"):
            frame[name] = frame[name].astype("datetime64[ms]")
    return frame


def problems(spec: LedgerSpec, table: pa.Table) -> list[str]:
    """Every broken column rule and hard row rule, checked directly from the spec's data."""
    found = []
    assert table.column_names == [c.name for c in spec.columns]
    for col in spec.columns:
        values = table.column(col.name)
        nulls = values.null_count
        if col.required and nulls:
            found.append(f"{col.name}: {nulls} empty")
        present = pc.drop_null(values)
        if col.choices is not None:
            bad = pc.sum(pc.invert(pc.is_in(present, pa.array(col.choices)))).as_py() or 0
            if bad:
                found.append(f"{col.name}: {bad} not in choices")
        if col.min is not None and len(present) and pc.min(present).as_py() < col.min:
            found.append(f"{col.name}: below min")
        if col.max is not None and len(present) and pc.max(present).as_py() > col.max:
            found.append(f"{col.name}: above max")
        if col.pattern is not None:
            rx = re.compile(col.pattern, re.ASCII)
            bad = [v for v in present.to_pylist() if not rx.fullmatch(v)]
            if bad:
                found.append(f"{col.name}: {len(bad)} do not match, e.g. {bad[:3]}")
        if col.unique and pc.count_distinct(values).as_py() != len(values):
            found.append(f"{col.name}: duplicates")
    keys = table.select(list(spec.key)).to_pandas()
    if keys.duplicated().any():
        found.append("duplicate keys")
    frame = typed(table)
    for rule in spec.row_checks:
        ok = np.asarray(rule.check(frame), dtype=bool)
        if not rule.soft and not ok.all():
            found.append(f"row rule {rule.name}: {int((~ok).sum())} rows fail")
    return found


@pytest.fixture(scope="module")
def full_sensing() -> pa.Table:
    return generate("sensing_devices", as_of=AS_OF)


@pytest.fixture(scope="module")
def full_cases() -> pa.Table:
    return generate("city_cases", as_of=AS_OF)


@pytest.mark.parametrize("ledger_id", sorted(GENERATORS))
def test_generators_are_deterministic_by_seed(ledger_id):
    a = generate(ledger_id, seed=7, scale=0.02, as_of=AS_OF)
    b = generate(ledger_id, seed=7, scale=0.02, as_of=AS_OF)
    c = generate(ledger_id, seed=8, scale=0.02, as_of=AS_OF)
    assert a.equals(b)
    assert not a.equals(c)


@pytest.mark.parametrize("ledger_id", sorted(GENERATORS))
def test_small_scale_passes_the_ledgers_own_rules(ledger_id):
    table = generate(ledger_id, seed=3, scale=0.05, as_of=AS_OF)
    assert problems(SPECS[ledger_id], table) == []


def test_full_scale_sensing_matches_the_plans_baseline(full_sensing):
    """About 3万 cameras and 13万 IoT devices (line 11), less those not yet registered."""
    assert problems(SENSING_LEDGER, full_sensing) == []
    n = full_sensing.num_rows
    cameras = pc.sum(pc.equal(full_sensing["device_type"], "视频监控")).as_py()
    assert 0.9 * plan.BASELINE_TOTAL < n < plan.BASELINE_TOTAL  # the census is not complete
    assert 0.95 * plan.BASELINE_CAMERAS < cameras <= plan.BASELINE_CAMERAS
    assert 0.9 * plan.BASELINE_IOT < n - cameras < plan.BASELINE_IOT * 1.02
    heat_pumps = pc.sum(pc.equal(full_sensing["device_type"], "热泵监测")).as_py()
    assert heat_pumps >= 0.95 * daxing.FACTS["heat_pump_households"].value  # line 31: 5万余户
    # every street and town has devices, inside Daxing's extent
    assert set(full_sensing["street"].to_pylist()) == set(district.street_names())
    lon, lat = full_sensing["lon"], full_sensing["lat"]
    assert district.LON_RANGE[0] < pc.min(lon).as_py() and pc.max(lon).as_py() < district.LON_RANGE[1]
    assert district.LAT_RANGE[0] < pc.min(lat).as_py() and pc.max(lat).as_py() < district.LAT_RANGE[1]
    # installed 2015 .. as_of; inspected after installation and not in the future
    assert pc.min(full_sensing["install_date"]).as_py() >= dt.date(2015, 1, 1)
    assert pc.max(full_sensing["install_date"]).as_py() <= AS_OF
    assert pc.max(full_sensing["last_inspection"]).as_py() <= AS_OF


def test_full_scale_sensing_has_a_realistic_inspection_backlog(full_sensing):
    import pandas as pd

    frame = full_sensing.to_pandas()
    in_service = frame[frame["status"].isin(["在用", "故障"])]
    last = pd.to_datetime(in_service["last_inspection"].fillna(in_service["install_date"]))
    due = last + pd.to_timedelta(in_service["inspection_cycle"], unit="D")
    overdue = (due < pd.Timestamp(AS_OF)).mean()
    assert 0.05 < overdue < 0.2
    networked = in_service["networked"].mean()
    assert 0.8 < networked < 0.97
    # every status occurs, and most devices are in service
    shares = frame["status"].value_counts(normalize=True)
    assert set(shares.index) == {"在用", "故障", "停用", "待验收"} and shares["在用"] > 0.8


def test_full_scale_cases_cover_2023_to_today(full_cases):
    assert problems(CASES_LEDGER, full_cases) == []
    assert 50_000 <= full_cases.num_rows <= 100_000
    found = full_cases["found_date"]
    assert pc.min(found).as_py() >= dt.date(2023, 1, 1) and pc.max(found).as_py() <= AS_OF
    frame = full_cases.to_pandas()
    closed = frame[frame["status"] == "已结案"]
    on_time = (closed["closed_date"] <= closed["deadline"]).mean()
    assert 0.85 < on_time < 0.97
    assert set(frame["source"]) == {"网格员", "12345热线", "视频AI", "巡查"}
    assert 0 < (frame["status"] != "已结案").sum() < 0.02 * len(frame)  # a live backlog, not a pile


def test_seed_facts_agree_with_the_plugins():
    assert [(k.name, k.code) for k in daxing.DEVICE_KINDS] == [(t.name, t.code) for t in DEVICE_TYPES]
    assert daxing.FACTS["cameras_built"].value == plan.BASELINE_CAMERAS
    assert daxing.FACTS["iot_devices"].value == plan.BASELINE_IOT
    assert daxing.DEADLINES["sensing_census"][0] == plan.CENSUS_DEADLINE
    assert {c.name for c in daxing.CASE_CATEGORIES} == set(CASES_LEDGER.column("category").choices)
    names = set(district.department_names())
    assert all(o in names for k in daxing.DEVICE_KINDS for o, _ in k.owners)
    assert all(u in names for c in daxing.CASE_CATEGORIES for u, _ in c.units)


def test_host_validation_accepts_the_seeds():
    """The host's own cell-by-cell validation (huizhi.excel.validation) finds no errors."""
    validation = pytest.importorskip("huizhi.excel.validation")
    for ledger_id, spec in SPECS.items():
        table = generate(ledger_id, seed=11, scale=0.03, as_of=AS_OF)
        issues = validation.validate_typed(spec, validation.typed_frame(table, spec))
        errors = [i for i in issues if i.severity == "error"]
        assert errors == [], (ledger_id, [(i.column, i.message) for i in errors][:5])


def test_load_demo_commits_version_one_and_is_idempotent(make_host):
    host = make_host(extra_plugins=PLUGINS)
    loaded = load_demo(host, scale=0.01, as_of=AS_OF)
    assert set(loaded) == {"sensing_devices", "city_cases"}
    for ledger_id, rows in loaded.items():
        versions = host.store.versions(ledger_id)
        assert len(versions) == 1
        v = versions[0]
        assert (v.number, v.kind, v.created_by, v.row_count, v.added) == (
            1,
            "seed",
            "system:seed",
            rows,
            rows,
        )
    assert load_demo(host, scale=0.01, as_of=AS_OF) == {}  # second call: nothing to do
    assert len(host.store.versions("sensing_devices")) == 1
    events = host.audit.search(action="ledger.seed")
    assert sorted(e.target for e in events) == ["ledger:city_cases", "ledger:sensing_devices"]


def test_load_demo_force_adds_a_version_and_only_seeds_declared_ledgers(make_host):
    host = make_host(extra_plugins=PLUGINS[:1])  # only the sensing plugin: no city_cases ledger
    assert load_demo(host, scale=0.01, as_of=AS_OF) == {"sensing_devices": pytest.approx(1528, abs=30)}
    again = load_demo(host, seed=99, scale=0.01, as_of=AS_OF, only_if_empty=False)
    assert list(again) == ["sensing_devices"]
    versions = host.store.versions("sensing_devices")
    assert [v.number for v in versions] == [2, 1] and versions[0].kind == "seed"
    # the same seed again changes nothing: no empty version is created
    assert load_demo(host, seed=99, scale=0.01, as_of=AS_OF, only_if_empty=False) == {}


@pytest.mark.parametrize("ledger_id", sorted(GENERATORS))
def test_seeds_round_trip_through_the_ledger_workbook(ledger_id):
    """Exported to the ledger's .xlsx and uploaded again, the demo rows come back unchanged,
    with warnings at most (the soft rules), so an admin can start from them."""
    import io

    excel = pytest.importorskip("huizhi.excel")
    spec = SPECS[ledger_id]
    table = generate(ledger_id, seed=5, scale=0.01, as_of=AS_OF)
    result = excel.ingest(io.BytesIO(excel.export_xlsx(table, spec)), "台账.xlsx", spec)
    assert result.ok and result.error_count == 0, result.problems_display().head(5).to_string()
    assert result.table.select(table.column_names).cast(table.schema).equals(table)
