"""Reported figures: value and period parsing, measure and entity mapping, and the loaded file."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.analysis.reported import (
    CONFIDENCE_LEVELS,
    DEFAULT_PATH,
    FIGURE_COLUMNS,
    UNUSABLE_COLUMNS,
    ReportedFigures,
    load_reported,
    volume_series,
)
from sim.analysis.reported_entities import BRANDS, resolve_entity
from sim.analysis.reported_periods import (
    FREQUENCIES,
    GRANULARITIES,
    MEASURES,
    VOLUME_MEASURES,
    classify_measure,
    parse_period,
)
from sim.analysis.reported_values import APPROX_TOLERANCE, QUALIFIERS, parse_items, parse_value

SHARED_COPY = Path("/work/shared/data/reported_figures.csv")
HEADER = '"date","entity","metric","value","unit","source","quote","confidence"\n'


@pytest.fixture(scope="module")
def rf() -> ReportedFigures:
    return load_reported()


def rows_where(rf: ReportedFigures, **equal: object) -> pd.DataFrame:
    f = rf.figures
    keep = pd.Series(True, index=f.index)
    for column, value in equal.items():
        keep &= f[column].isna() if value is None else f[column] == value
    return f[keep]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("text", "unit", "value", "low", "high", "qualifier"),
    [
        ("32973", "vehicles", 32973, 32973, 32973, "="),
        ("32,900", "vehicles", 32900, 32900, 32900, "="),
        ("76 180", "vehicles", 76180, 76180, 76180, "="),
        (">57,000", "vehicles", 57000, 57000, math.inf, ">"),
        (">800", "vehicles", 800, 800, math.inf, ">"),
        ("<500", "vehicles", 500, -math.inf, 500, "<"),
        ("~12,000", "vehicles", 12000, 11400, 12600, "~"),
        ("359,800-449,800", "RMB", 404800, 359800, 449800, "range"),
        ("~200,000-600,000", "RMB", 400000, 200000, 600000, "range"),
        ("38.63万", "vehicles", 386300, 386300, 386300, "="),
        ("5.67 m", "million vehicles / %", 5.67e6, 5.67e6, 5.67e6, "="),
        ("19.29", "million vehicles", 19.29e6, 19.29e6, 19.29e6, "="),
        (">4 million", "applications", 4e6, 4e6, math.inf, ">"),
        ("nearly 23 million (+5.5%)", "vehicles", 23e6, 23e6 * 0.95, 23e6 * 1.05, "~"),
        ("145.176", "RMB bn", 145.176e9, 145.176e9, 145.176e9, "="),
        ("683,600 (-7%)", "vehicles", 683600, 683600, 683600, "="),
        ("56,887 (-28%)", "vehicles", 56887, 56887, 56887, "="),
        (">657,000 (+8.8%)", "vehicles", 657000, 657000, math.inf, ">"),
        ("15 (from 20/25)", "%", 15, 15, 15, "="),
        ("17.0", "%", 17.0, 17.0, 17.0, "="),
        ("47%", "million vehicles / %", 47, 47, 47, "="),
        ("-23", "%", -23, -23, -23, "="),
    ],
)
def test_parse_value_forms(text: str, unit: str, value: float, low: float, high: float, qualifier: str) -> None:
    p = parse_value(text, unit)
    assert p.qualifier == qualifier
    assert p.value == pytest.approx(value)
    assert p.low == pytest.approx(low)
    assert p.high == pytest.approx(high)


def test_parse_value_keeps_the_stripped_parenthetical_as_note() -> None:
    assert parse_value("683,600 (-7%)").note == "(-7%)"


def test_approximate_values_get_the_documented_tolerance() -> None:
    p = parse_value("~24,000")
    assert (p.low, p.high) == pytest.approx((24000 * (1 - APPROX_TOLERANCE), 24000 * (1 + APPROX_TOLERANCE)))


@pytest.mark.parametrize(
    "text",
    ["NOT FOUND", "", "32,73", "600-500", "10,000 in 87 days; >5,000/month by May", "single Max trim, -10,000", "#1"],
)
def test_parse_value_rejects_with_a_message_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="cannot parse value"):
        parse_value(text)


@given(st.integers(min_value=0, max_value=10**10))
def test_thousands_separators_round_trip(n: int) -> None:
    assert parse_value(f"{n:,}").value == n
    assert parse_value(f"{n:,}".replace(",", " ")).value == n
    assert parse_value(f">{n:,}").low == n


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("M9 18,047; M7 16,562; M5 6,926", [("M9", 18047), ("M7", 16562), ("M5", 6926)]),
        ("Li 51,000; Aito 41,535; Xiaomi >10,000", [("Li", 51000), ("Aito", 41535), ("Xiaomi", 10000)]),
        ("31.44 m total; 12.866 m NEV; 40.9%", [("total", 31.44e6), ("NEV", 12.866e6), (None, 40.9)]),
        ("BYD 17.0 / Geely 18.8 / SAIC 35.3", [("BYD", 17.0), ("Geely", 18.8), ("SAIC", 35.3)]),
        ("17.4 / 19.9 / 37.6", [(None, 17.4), (None, 19.9), (None, 37.6)]),
        ("-19.2% / -15% (two sub-measures)", [(None, -19.2), (None, -15.0)]),
        ("2,000,000 cumulative by ~2028", [("cumulative by ~2028", 2e6)]),
    ],
)
def test_parse_items(text: str, expected: list[tuple[str | None, float]]) -> None:
    items = parse_items(text)
    assert [(it.label, it.parsed.value) for it in items] == [(k, pytest.approx(v)) for k, v in expected]


def test_parse_items_keeps_item_qualifiers() -> None:
    assert parse_items("Li 51,000; Xiaomi >10,000")[1].parsed.qualifier == ">"


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("text", "granularity", "start", "end"),
    [
        ("2024-07-29", "day", "2024-07", "2024-07"),
        ("2024-07", "month", "2024-07", "2024-07"),
        ("2024-Q1", "quarter", "2024-01", "2024-03"),
        ("2023-Q4", "quarter", "2023-10", "2023-12"),
        ("2022", "year", "2022-01", "2022-12"),
        ("2024-01-01..2025-12-31", "span", "2024-01", "2025-12"),
        ("2024-2025", "span", "2024-01", "2025-12"),
    ],
)
def test_parse_period_forms(text: str, granularity: str, start: str, end: str) -> None:
    p = parse_period(text)
    assert (p.granularity, p.start, p.end) == (granularity, start, end)


@pytest.mark.parametrize("text", ["", "2024-13", "2024-02-30", "2024-Q5", "Q1 2024", "2025..2024", "2025-2024", "soon"])
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


# --------------------------------------------------------------------------- measures and entities


@pytest.mark.parametrize(
    ("metric", "entity", "unit", "measure"),
    [
        ("monthly deliveries", "AITO", "vehicles", "deliveries"),
        ("annual sales 2023", "AITO", "vehicles", "sales"),
        ("Jan-Nov 2024 sales", "AITO (CAAM)", "vehicles", "sales"),
        ("Jan-Jul 2024 cumulative", "AITO", "vehicles", "cumulative"),
        ("cumulative milestone: 1,000,000th vehicle", "AITO", "vehicles", "cumulative"),
        ("cumulative deliveries since 2023-09-12 launch", "AITO new M7", "vehicles", "cumulative"),
        ("monthly production (not deliveries)", "AITO new M7", "vehicles", "production"),
        ("domestic retail 2024 (CPCA)", "Tesla China", "vehicles", "retail"),
        ("wholesale incl. exports 2023", "Tesla China (Shanghai)", "vehicles", "wholesale"),
        ("annual registrations 2022", "AITO", "vehicles", "registrations"),
        ("share of >RMB 500k segment", "AITO M9", "%", "share"),
        ("rank in RMB 400k segment", "AITO M8", "text", "rank"),
        ("launch & price range", "AITO M8 (EREV)", "RMB", "price"),
        ("pre-orders before launch", "AITO M8", "orders", "orders"),
        ("firm orders first month", "AITO new M7 (2023)", "orders", "orders"),
        ("retail stores", "Li Auto", "stores", "stores"),
        ("2026 sales target", "AITO", "vehicles", "target"),
        ("exemption 2024-2025 cap (Reuters)", "China NEV purchase tax", "RMB", "policy"),
        ("definitive rate (3rd source)", "EU CVD on China-made BEVs: Tesla", "%", "tariff"),
        ("raised 2024 standard: scrap & buy NEV / ICE", "China trade-in (scrappage) subsidy", "RMB", "subsidy"),
        ("revenue 2024", "SERES Group", "RMB bn", "revenue"),
        ("launch (pre-orders from 2022-07-27)", "AITO M5 EV (BEV)", "date", "date"),
        ("delivery start", "AITO M5 (EREV)", "month", "date"),
        ("total & NEV", "China vehicle sales (CAAM, wholesale incl. exports)", "vehicles", "wholesale"),
        ("total & NEV", "China vehicle sales (CAAM, wholesale incl. exports)", "%", "share"),
        ("YoY change 2024", "China luxury car market (ThinkerCar)", "%", "other"),
    ],
)
def test_classify_measure(metric: str, entity: str, unit: str, measure: str) -> None:
    assert classify_measure(metric, entity, unit) == measure


@pytest.mark.parametrize(
    ("entity", "brand", "model", "basis", "market"),
    [
        ("AITO", "AITO", None, "", "CN"),
        ("SERES brand (AITO)", "AITO", None, "brand", "CN"),
        ("SERES brand (mostly AITO M5)", "AITO", None, "brand", "CN"),
        ("HIMA", None, None, "alliance", "CN"),
        ("HIMA (Huawei alliance, mostly AITO)", None, None, "alliance", "CN"),
        ("AITO (per chinacbs; likely HIMA total)", "AITO", None, "disputed", "CN"),
        ("SERES Group", None, None, "parent", None),
        ("Chongqing Sokon (SERES parent)", None, None, "parent", None),
        ("Tesla China", "Tesla", None, "", "CN"),
        ("Tesla China (Shanghai)", "Tesla", None, "", None),
        ("BMW Group China", "BMW", None, "", "CN"),
        ("BMW China", "BMW", None, "", "CN"),
        ("Mercedes-Benz China", "Mercedes-Benz", None, "", "CN"),
        ("Mercedes-Benz Cars China", "Mercedes-Benz", None, "", "CN"),
        ("NIO Inc. (group)", "NIO", None, "group", None),
        ("Xiaomi Auto", "Xiaomi", None, "", "CN"),
        ("Zeekr", "Zeekr", None, "", "CN"),
        ("Denza (BYD)", "Denza", None, "", "CN"),
        ("AITO M9", "AITO", "AITO M9", "", "CN"),
        ("AITO new M7 (2023, EREV)", "AITO", "AITO new M7", "", "CN"),
        ("AITO M7 (1st gen)", "AITO", "AITO M7", "", "CN"),
        ("AITO M5 EV (BEV)", "AITO", "AITO M5 EV", "", "CN"),
        ("Li Auto L7 (EREV)", "Li Auto", "Li Auto L7", "", "CN"),
        ("Tesla Model Y (China, BEV)", "Tesla", "Tesla Model Y", "", "CN"),
        ("Zeekr 001 (BEV)", "Zeekr", "Zeekr 001", "", "CN"),
        ("Denza D9 (MPV)", "Denza", "Denza D9", "", "CN"),
        ("China passenger car retail (CPCA)", None, None, "", "CN"),
        ("EU CVD on China-made BEVs: Tesla (Shanghai)", "Tesla", None, "", "EU"),
        ("US Section 301 tariff on China-made EVs", None, None, "", "US"),
    ],
)
def test_resolve_entity(entity: str, brand: str | None, model: str | None, basis: str, market: str | None) -> None:
    rule = resolve_entity(entity)
    assert (rule.brand, rule.model, rule.basis, rule.market) == (brand, model, basis, market)


# --------------------------------------------------------------------------- the project's file


def test_the_project_file_is_an_exact_copy_of_the_shared_data() -> None:
    if not SHARED_COPY.exists():
        pytest.skip("shared data not available here")
    assert DEFAULT_PATH.read_bytes() == SHARED_COPY.read_bytes()


def test_tables_have_the_documented_columns(rf: ReportedFigures) -> None:
    assert tuple(rf.figures.columns) == FIGURE_COLUMNS
    assert tuple(rf.unusable.columns) == UNUSABLE_COLUMNS
    assert rf.figures["line"].dtype == "int64"
    assert all(rf.figures[c].dtype == "float64" for c in ("value", "low", "high"))


def test_every_csv_line_is_in_figures_or_unusable(rf: ReportedFigures) -> None:
    with DEFAULT_PATH.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        lines = set()
        while True:
            line = reader.line_num + 1
            if next(reader, None) is None:
                break
            lines.add(line)
    used, unusable = set(rf.figures["line"]), set(rf.unusable["line"])
    assert used | unusable == lines
    assert not used & unusable
    assert len(lines) == 312


def test_line_numbers_point_at_the_rows(rf: ReportedFigures) -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()
    for row in rf.figures.itertuples():
        assert text[row.line - 1].startswith(f'"{row.date}",')
        assert row.raw_value.replace('"', '""') in text[row.line - 1]


def test_values_are_consistent(rf: ReportedFigures) -> None:
    f = rf.figures
    assert set(f["granularity"]) <= set(GRANULARITIES)
    assert set(f["measure"]) <= set(MEASURES)
    assert set(f["confidence"]) <= set(CONFIDENCE_LEVELS)
    assert set(f["brand"].dropna()) <= set(BRANDS)
    assert all(m.startswith(b) for b, m in zip(f["brand"], f["model"], strict=True) if m is not None)
    assert (f["start"] <= f["end"]).all()
    volume = f["measure"].isin(VOLUME_MEASURES)
    assert set(f.loc[volume, "frequency"]) <= set(FREQUENCIES)
    assert f.loc[~volume, "frequency"].isna().all()
    numbers = f[f["value"].notna()]
    assert set(numbers["qualifier"]) <= set(QUALIFIERS)
    assert ((numbers["low"] <= numbers["value"]) & (numbers["value"] <= numbers["high"])).all()
    assert f.loc[f["value"].isna(), "qualifier"].isna().all()


def test_unusable_rows_say_why(rf: ReportedFigures) -> None:
    kinds = ("not found", "unparseable value", "several periods in one value", "bad period", "bad confidence")
    assert all(r.startswith(kinds) for r in rf.unusable["reason"])
    not_found = rf.unusable[rf.unusable["value"].str.startswith("NOT FOUND")]
    assert len(not_found) == 4
    assert not_found["reason"].str.startswith("not found").all()


def test_conflicting_sources_are_both_kept(rf: ReportedFigures) -> None:
    jan = rows_where(rf, brand="AITO", model=None, measure="deliveries", start="2024-01", end="2024-01")
    assert sorted(jan["value"]) == [32900, 32973]
    assert jan["line"].nunique() == 2


@pytest.mark.parametrize(("year", "value"), [(2022, 76180), (2023, 94380), (2024, 386300)])
def test_aito_annual_totals(rf: ReportedFigures, year: int, value: float) -> None:
    annual = rows_where(rf, brand="AITO", model=None, basis="", frequency="annual", start=f"{year}-01")
    assert value in set(annual["value"])


def test_li_auto_2023_quarters_sum_to_the_year(rf: ReportedFigures) -> None:
    li = rows_where(rf, brand="Li Auto", model=None, measure="deliveries")
    quarters = li[(li["frequency"] == "quarterly") & (li["start"].str.startswith("2023"))]
    year = li[(li["frequency"] == "annual") & (li["start"] == "2023-01")]
    assert len(quarters) == 4
    assert quarters["value"].sum() == year["value"].item() == 376030


def test_multi_valued_cell_is_split_into_models(rf: ReportedFigures) -> None:
    july = rf.figures[rf.figures["raw_value"] == "M9 18,047; M7 16,562; M5 6,926"]
    assert list(july["entity"]) == ["AITO M9", "AITO M7", "AITO M5"]
    assert list(july["model"]) == ["AITO M9", "AITO new M7", "AITO M5"]
    assert july["line"].nunique() == 1
    brand = rows_where(rf, brand="AITO", model=None, basis="", measure="deliveries", start="2024-07", end="2024-07")
    assert july["value"].sum() == brand["value"].item() == 41535


def test_ranking_table_is_split_by_brand(rf: ReportedFigures) -> None:
    table = rf.figures[rf.figures["metric"] == "July 2024 sales table"]
    assert len(table) == 8
    assert set(table["brand"].dropna()) == {"Li Auto", "AITO", "NIO", "Zeekr", "Denza", "Xiaomi"}
    xiaomi = table[table["brand"] == "Xiaomi"].iloc[0]
    assert (xiaomi["qualifier"], xiaomi["low"], xiaomi["high"]) == (">", 10000, math.inf)


@pytest.mark.parametrize(
    ("metric", "measure", "frequency", "start", "end", "cumulative_of"),
    [
        ("Jan-Jul 2024 cumulative", "cumulative", "cumulative", "2024-01", "2024-07", "sales"),
        ("Jan-Nov 2024 sales", "sales", "cumulative", "2024-01", "2024-11", "sales"),
        ("cumulative sales Apr-Nov 2021", "cumulative", "cumulative", "2021-04", "2021-11", "sales"),
        ("cumulative deliveries Jul 2022-Jun 2023", "cumulative", "cumulative", "2022-07", "2023-06", "deliveries"),
        (
            "cumulative deliveries since 2023-09-12 launch",
            "cumulative",
            "cumulative",
            "2023-09",
            "2024-03",
            "deliveries",
        ),
        ("cumulative sales 7 months after launch", "cumulative", "cumulative", "2024-04", "2024-04", "sales"),
        (
            "cumulative milestone: 1,000,000th vehicle off line",
            "cumulative",
            "point",
            "2026-01",
            "2026-01",
            "production",
        ),
        ("Q1 2024 deliveries", "deliveries", "quarterly", "2024-01", "2024-03", None),
        ("annual deliveries 2022 (Mar-Dec)", "deliveries", "annual", "2022-01", "2022-12", None),
        ("monthly production (not deliveries)", "production", "monthly", "2023-10", "2023-10", None),
        ("wholesale incl. exports 2023", "wholesale", "annual", "2023-01", "2023-12", None),
        ("annual registrations 2022", "registrations", "annual", "2022-01", "2022-12", None),
    ],
)
def test_frequency_and_sum_start(
    rf: ReportedFigures, metric: str, measure: str, frequency: str, start: str, end: str, cumulative_of: str | None
) -> None:
    row = rf.figures[rf.figures["metric"] == metric].iloc[0]
    assert (row["measure"], row["frequency"], row["start"], row["end"]) == (measure, frequency, start, end)
    assert row["cumulative_of"] == cumulative_of


def test_informational_and_policy_rows(rf: ReportedFigures) -> None:
    launch = rf.figures[(rf.figures["metric"] == "launch date") & (rf.figures["entity"] == "AITO M9")].iloc[0]
    assert launch["measure"] == "date" and math.isnan(launch["value"]) and launch["start"] == "2023-12"
    caps = rf.figures[rf.figures["metric"] == "halved 2026-2027 (cap per vehicle)"]
    assert caps["value"].tolist() == [15000] and caps["start"].item() == "2026-01"
    eu = rf.figures[rf.figures["metric"].str.startswith("provisional duties")]
    assert dict(zip(eu["entity"].str.extract(r"\[(.*)\]")[0], eu["value"], strict=True)) == {
        "BYD": 17.4,
        "Geely": 19.9,
        "SAIC": 37.6,
        "other coop": 20.8,
        "non-coop": 37.6,
    }


def test_no_2025_or_2026_volumes_except_the_milestones(rf: ReportedFigures) -> None:
    f = rf.figures
    late = f[f["measure"].isin(VOLUME_MEASURES) & (f["end"] > "2024-12")]
    points = late[late["frequency"] == "point"]
    assert set(points["value"]) == {1_000_000, 270_000}
    # the brief's record month: one AITO monthly figure, a lower bound
    monthly = late[late["frequency"] != "point"]
    assert list(zip(monthly["end"], monthly["frequency"], monthly["value"], monthly["qualifier"], strict=True)) == [
        ("2025-12", "monthly", 57_000, ">")
    ]


def test_volume_series(rf: ReportedFigures) -> None:
    aito = volume_series(rf, brand="AITO")
    assert not aito.empty and aito["model"].isna().all() and aito["value"].notna().all()
    assert set(aito["measure"]) <= {"deliveries", "sales", "retail", "registrations"}
    assert list(aito["end"]) == sorted(aito["end"])
    m9 = volume_series(rf, model="AITO M9")
    assert set(m9["model"]) == {"AITO M9"} and (m9["brand"] == "AITO").all()
    with_models = volume_series(rf, brand="AITO", include_models=True)
    assert len(with_models) > len(aito) and "AITO M9" in set(with_models["model"])
    milestones = volume_series(rf, brand="AITO", measures=("cumulative",))
    assert (milestones["measure"] == "cumulative").all() and 1_000_000 in set(milestones["value"])


# --------------------------------------------------------------------------- other files


def test_bad_rows_are_reported_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "figures.csv"
    path.write_text(
        HEADER
        + '"2024-01","AITO","monthly deliveries","32,900","vehicles","s","q","medium"\n'
        + "\n"
        + '"2024-13","AITO","monthly deliveries","1","vehicles","s","q","high"\n'
        + '"2024-02","AITO","monthly deliveries","1","vehicles","s","q","certain"\n'
        + '"2024-03","AITO","monthly deliveries","lots","vehicles","s","q","low"\n'
        + '"2024-04","AITO","monthly deliveries","1","vehicles"\n',
        encoding="utf-8",
    )
    rf = load_reported(path)
    assert rf.figures["line"].tolist() == [2]
    reasons = dict(zip(rf.unusable["line"], rf.unusable["reason"], strict=True))
    assert sorted(reasons) == [4, 5, 6, 7]
    assert reasons[4].startswith("bad period")
    assert reasons[5].startswith("bad confidence")
    assert reasons[6].startswith("unparseable value")
    assert reasons[7].startswith("malformed row")


def test_missing_column_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('"date","entity","metric","value"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:1: missing column\(s\) unit"):
        load_reported(path)
