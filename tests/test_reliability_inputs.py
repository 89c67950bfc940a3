"""The bad-input catalogue: every kind of broken scenario, sweep, reported-figures or calibration input
makes the command line exit with status 2 and a message naming the file, the line and the field, with
no traceback and nothing written.

The files are in ``tests/data/reliability/{scenario,sweep,reported}/``, each saying on its first line what
is wrong and where; the very large ones are made by the tests. Each case drives ``sim`` in this process
(``sim.cli.main``), as a user's command line would. RELIABILITY.md lists the cases and their outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DATA, TINY

from sim import cli
from sim.analysis.reported_csv import MAX_FILE_BYTES as CSV_LIMIT
from sim.scenario.yamlio import MAX_FILE_BYTES as YAML_LIMIT
from sim.scenario.yamlio import MAX_NODES

REL = DATA / "reliability"


@dataclass(frozen=True)
class Case:
    """A bad input and the first line of what ``sim`` must say about it.

    Attributes:
        command: ``validate``, ``run``, ``sweep``, ``compare`` (``--reported FILE``) or ``fit-appeals``.
        file: the input, relative to tests/data/reliability (or one made by :func:`make`).
        line: the line the message names.
        field: the field (or CSV column) it names; None for a whole-file problem (empty, binary,
            too large, missing), where no field applies.
        says: words the message must contain (for a whole-file problem, how it starts).
        named: the file the message names when it is not ``file`` (a parent of ``extends``, a
            sweep's base scenario), relative to tests/data/reliability.
    """

    command: str
    file: str
    line: int
    field: str | None
    says: str
    named: str | None = None


SCENARIO_CASES = {
    # YAML syntax
    "syntax: unclosed flow mapping": Case("validate", "scenario/syntax_flow.yaml", 6, "products[0]", "YAML syntax error"),
    "syntax: tab indentation": Case("validate", "scenario/syntax_tab.yaml", 5, "buyers", "found character '\\t'"),
    "syntax: unclosed quote": Case("validate", "scenario/syntax_quote.yaml", 4, "description", "while scanning a quoted scalar"),
    "duplicate key": Case("validate", "scenario/duplicate_key.yaml", 7, "products[0]", "key 'price' appears twice"),
    "key that is not text": Case("validate", "scenario/year_key.yaml", 7, "markets[0].growth.2024", "write it in quotes: '2024'"),
    "merge key of a number": Case("validate", "scenario/merge_key.yaml", 5, "buyers", "merge key '<<'"),
    # keys
    "unknown top-level key": Case("validate", "scenario/unknown_top_key.yaml", 4, "bueyrs", "did you mean 'buyers'?"),
    "unknown nested key": Case("validate", "scenario/unknown_nested_key.yaml", 6, "products[0].capacity.maximum", "did you mean 'max'?"),
    "missing required key": Case("validate", "scenario/missing_key.yaml", 5, "products[3].capacity", "required key is missing"),
    "event missing a field": Case("validate", "scenario/event_missing_field.yaml", 5, "events[0]", "needs 'price' or 'factor'"),
    # types
    "wrong type: text for a number": Case("validate", "scenario/wrong_type_text.yaml", 6, "products[0].seats", "valid integer"),
    "wrong type: list for a mapping": Case("validate", "scenario/wrong_type_list.yaml", 4, "buyers", "valid dictionary"),
    "wrong type: true for a price": Case("validate", "scenario/wrong_type_bool.yaml", 6, "products[0].price", "should be a number, got true"),
    "top level not a mapping": Case("validate", "scenario/top_level_scalar.yaml", 1, None, "a scenario must be a mapping"),
    # values
    "negative capacity": Case("validate", "scenario/negative_capacity.yaml", 6, "products[1].capacity.max", "greater than or equal to 0, got -100"),
    "share above 1": Case("validate", "scenario/absurd_share.yaml", 5, "buyers.defer_share", "less than or equal to 1, got 3"),
    "absurd market size": Case("validate", "scenario/absurd_market.yaml", 6, "markets[0].buyers_per_month", "less than or equal to 1000000000"),
    "absurd whole number": Case("validate", "scenario/too_many_defer_months.yaml", 5, "buyers.max_defer_months", "less than or equal to 60"),
    "NaN": Case("validate", "scenario/not_a_number.yaml", 6, "products[2].price", "finite number, got nan"),
    "infinity": Case("validate", "scenario/infinite.yaml", 6, "products[0].capacity.max", "finite number, got inf"),
    "shares not summing to 1": Case("validate", "scenario/city_tiers.yaml", 6, "markets[0].city_tiers", "shares sum to 1.2, not 1"),
    "name that is a path": Case("validate", "scenario/name_with_path.yaml", 3, "name", "must be a plain name"),
    # dates
    "impossible month": Case("validate", "scenario/impossible_month.yaml", 6, "products[1].launch", "month 0 is not in 1..12"),
    "day instead of month": Case("validate", "scenario/day_not_month.yaml", 4, "start", "expected a month as YYYY-MM, got '2024-01-05'"),
    "year out of range": Case("validate", "scenario/year_out_of_range.yaml", 6, "products[2].launch", "year 1800 is out of range"),
    "end before start": Case("validate", "scenario/end_before_start.yaml", 4, "end", "end 2023-06 is before start 2024-01"),
    "delivery before launch": Case("validate", "scenario/delivery_before_launch.yaml", 6, "products[1].delivery_start", "delivery_start 2024-02 is before launch"),
    "span of two centuries": Case("validate", "scenario/span_too_long.yaml", 4, "end", "at most 50 years"),
    # references
    "unknown brand": Case("validate", "scenario/unknown_store_brand.yaml", 5, "stores[2].brand", "unknown brand 'Zeta'"),
    "unknown product": Case("validate", "scenario/unknown_event_product.yaml", 5, "events[0].product", "unknown product 'Z9'"),
    "unknown market": Case("validate", "scenario/unknown_market.yaml", 6, "products[0].markets[1]", "unknown market 'EU'"),
    "duplicate name in one file": Case("validate", "scenario/duplicate_brand.yaml", 13, "brands[1].name", "duplicate name 'X'"),
    "duplicate update of an inherited item": Case("validate", "scenario/duplicate_item.yaml", 6, "products[1]", "duplicate name 'A1'"),
    "remove of an item not inherited": Case("validate", "scenario/remove_unknown.yaml", 5, "products[0]", "cannot remove 'Z9'"),
    "append of a number": Case("validate", "scenario/list_operation.yaml", 4, "events.append", "'append' takes a list"),
    # extends
    "extends cycle": Case("validate", "scenario/cycle_a.yaml", 3, "extends", "cycle_a.yaml -> cycle_b.yaml -> cycle_a.yaml"),
    "extends itself": Case("validate", "scenario/extends_self.yaml", 2, "extends", "extends forms a cycle"),
    "extends a missing file": Case("validate", "scenario/extends_missing.yaml", 2, "extends", "which does not exist"),
    "extends a list": Case("validate", "scenario/extends_not_text.yaml", 2, "extends", "must be a file path"),
    # whole files
    "empty file": Case("validate", "scenario/empty.yaml", 1, None, "file is empty"),
    "comments only": Case("validate", "scenario/comments_only.yaml", 1, None, "file is empty"),
    "binary garbage": Case("validate", "scenario/binary.yaml", 1, None, "binary data (NUL bytes)"),
    "not UTF-8": Case("validate", "scenario/not_utf8.yaml", 4, None, "not UTF-8 text"),
    "enormous file": Case("validate", "<enormous.yaml>", 1, None, f"file is {YAML_LIMIT + 1:,} bytes; the limit is {YAML_LIMIT:,}"),
    "millions of values": Case("validate", "<many_values.yaml>", 2, None, f"more than {MAX_NODES:,} values"),
    "missing file": Case("validate", "scenario/no_such_file.yaml", 1, None, "file not found"),
    "a folder": Case("validate", "scenario", 1, None, "is a folder, not a file"),
    # hostile YAML
    "anchor bomb": Case("validate", "scenario/anchor_bomb.yaml", 9, "f[0]", "is this an alias bomb?"),
    "deep nesting": Case("validate", "scenario/deep_nesting.yaml", 4, "description[0][0]", "nested deeper than 40 levels"),
    "unsafe tag !!python/object": Case("validate", "scenario/unsafe_python_object.yaml", 4, "description", "not allowed: tag !!python/object/apply:os.system"),
    "unsafe tag on a mapping": Case("validate", "scenario/unsafe_python_mapping.yaml", 4, "buyers", "not allowed: tag !!python/object/new"),
    "unknown tag !include": Case("validate", "scenario/custom_tag.yaml", 4, "markets", "tag '!include'"),
    # cross-references that would leave something without effect (issue 21)
    "appeal_like cycle": Case("validate", "scenario/appeal_like_cycle.yaml", 6, "products[0].appeal_like[0]", "takes its own appeal from appeal_like"),
    "awareness in an unknown market": Case("validate", "scenario/awareness_unknown_market.yaml", 6, "brands[1].awareness.CM", "unknown market 'CM'"),
    "subsidy in an unknown market": Case("validate", "scenario/subsidy_unknown_market.yaml", 6, "policies.subsidies[0].market", "unknown market 'EU'"),
    "launched after the end": Case("validate", "scenario/launch_after_end.yaml", 6, "products[3].launch", "after the scenario's end 2024-12"),
    "event after the end": Case("validate", "scenario/event_after_end.yaml", 6, "events[2].month", "after the scenario's end 2024-12"),
    "empty name": Case("validate", "scenario/empty_name.yaml", 5, "products[3].name", "must not be empty"),
    "control character in a name": Case("validate", "scenario/control_name.yaml", 5, "brands[2].name", "must not contain control characters"),
    # the same files through `sim run`: refused before any results folder exists
    "run: anchor bomb": Case("run", "scenario/anchor_bomb.yaml", 9, "f[0]", "is this an alias bomb?"),
    "run: unknown key": Case("run", "scenario/unknown_top_key.yaml", 4, "bueyrs", "did you mean 'buyers'?"),
    "run: NaN": Case("run", "scenario/not_a_number.yaml", 6, "products[2].price", "finite number"),
}

SWEEP_CASES = {
    "sweep: syntax error": Case("sweep", "sweep/syntax.yaml", 5, "parameters[0]", "YAML syntax error"),
    "sweep: empty file": Case("sweep", "sweep/empty.yaml", 1, None, "file is empty"),
    "sweep: not a mapping": Case("sweep", "sweep/not_a_mapping.yaml", 1, None, "a sweep file must be a mapping"),
    "sweep: unknown key": Case("sweep", "sweep/unknown_key.yaml", 3, "replicatons", "did you mean 'replications'?"),
    "sweep: missing base": Case("sweep", "sweep/missing_base.yaml", 2, "base", "required key is missing"),
    "sweep: wrong type": Case("sweep", "sweep/wrong_type.yaml", 3, "replications", "valid integer"),
    "sweep: base not found": Case("sweep", "sweep/base_not_found.yaml", 2, "base", "does not exist"),
    "sweep: bad base scenario": Case(
        "sweep", "sweep/bad_base.yaml", 6, "products[1].capacity.max", "greater than or equal to 0",
        named="scenario/negative_capacity.yaml",
    ),
    "sweep: unknown design": Case("sweep", "sweep/unknown_design.yaml", 3, "design", "got 'random'"),
    "sweep: path to nothing": Case("sweep", "sweep/unknown_path.yaml", 5, "parameters[0].path", "no item named 'Z9'"),
    "sweep: selector matching nothing": Case("sweep", "sweep/selector_matches_nothing.yaml", 5, "parameters[0].path", "matches 0 items"),
    "sweep: parameter twice": Case("sweep", "sweep/repeated_parameter.yaml", 6, "parameters[1].path", "appears twice"),
    "sweep: low above high": Case("sweep", "sweep/low_above_high.yaml", 6, "parameters[0].high", "must be below high"),
    "sweep: impossible month value": Case("sweep", "sweep/bad_month_value.yaml", 5, "parameters[0].values[1]", "month 13 is not in 1..12"),
    "sweep: Sobol size": Case("sweep", "sweep/sobol_not_power_of_two.yaml", 4, "samples", "power of 2"),
    "sweep: a billion grid points": Case("sweep", "sweep/grid_explodes.yaml", 4, "parameters", "1,000,000,000 points"),
    "sweep: a billion replications": Case("sweep", "sweep/absurd_replications.yaml", 3, "replications", "the limit is 1,000,000 runs"),
    "sweep: invalid point": Case("sweep", "sweep/invalid_point.yaml", 4, "parameters", "point 1 (products.A1.price=-5)"),
    "sweep: name that is a path": Case("sweep", "sweep/name_with_path.yaml", 2, "name", "must be a plain name"),
    "sweep: one value under two spellings": Case("sweep", "sweep/alias.yaml", 6, "parameters[1].path", "names the same value as 'products.A1.price'"),
    "sweep: the seed swept": Case("sweep", "sweep/seed.yaml", 5, "parameters[0].path", "the seed cannot be swept"),
    "sweep: the scale swept and set": Case("sweep", "sweep/scale_twice.yaml", 6, "parameters[0].path", "also set by the sweep's 'scale'"),
    "sweep: a scale of billions of agents": Case("sweep", "sweep/scale_too_fine.yaml", 4, "parameters", "more than the limit of 20,000,000"),
}

REPORTED_CASES = {
    "reported: missing column": Case("compare", "reported/missing_column.csv", 1, None, "missing column(s) unit, confidence"),
    "reported: column twice": Case("compare", "reported/duplicate_column.csv", 1, "value", "column appears 2 times"),
    "reported: empty file": Case("compare", "reported/empty.csv", 1, None, "file is empty"),
    "reported: binary garbage": Case("compare", "reported/binary.csv", 1, None, "binary data (NUL bytes)"),
    "reported: not UTF-8": Case("compare", "reported/not_utf8.csv", 3, "entity", "not UTF-8 text"),
    "reported: unclosed quote": Case("compare", "reported/unclosed_quote.csv", 3, "quote", "a quoted field is never closed"),
    "reported: text after a quote": Case("compare", "reported/text_after_quote.csv", 3, "value", "text after a closing quote"),
    "reported: field too long": Case("compare", "<long_field.csv>", 2, "quote", "a field longer than"),
    "reported: enormous file": Case("compare", "<enormous.csv>", 1, None, f"file is {CSV_LIMIT + 1:,} bytes; the limit is {CSV_LIMIT:,}"),
    "reported: missing file": Case("compare", "reported/no_such_file.csv", 1, None, "file not found"),
    "reported: a folder": Case("compare", "reported", 1, None, "is a folder, not a file"),
}

CALIBRATION_CASES = {
    "fit-appeals: bad scenario": Case("fit-appeals", "scenario/unknown_market.yaml", 6, "products[0].markets[1]", "unknown market 'EU'"),
    "fit-appeals: anchor bomb": Case("fit-appeals", "scenario/anchor_bomb.yaml", 9, "f[0]", "alias bomb"),
}

CASES = {**SCENARIO_CASES, **SWEEP_CASES, **REPORTED_CASES, **CALIBRATION_CASES}


def make(name: str, folder: Path) -> Path:
    """The generated inputs: files too large to keep in the repository."""
    path = folder / name.strip("<>")
    if name == "<enormous.yaml>":
        # A valid scenario padded with one comment line to one byte over the limit.
        text = TINY.read_text() + "# "
        path.write_text(text + "x" * (YAML_LIMIT + 1 - len(text.encode()) - 1) + "\n")
    elif name == "<many_values.yaml>":
        # Just under the size limit, 2.4 million values: refused after 200,000, in about a second.
        path.write_text("name: many-values\ndescription: [" + ",".join(["1"] * 2_400_000) + "]\n")
    elif name == "<enormous.csv>":
        header = '"date","entity","metric","value","unit","source","quote","confidence"\n'
        row = '"2024","AITO","annual deliveries","444,456","vehicles","s","q","high"\n'
        body = row * ((CSV_LIMIT - len(header)) // len(row))
        path.write_text(header + body + "x" * (CSV_LIMIT + 1 - len(header) - len(body)))  # ASCII: bytes = characters
    elif name == "<long_field.csv>":
        path.write_text(
            '"date","entity","metric","value","unit","source","quote","confidence"\n'
            f'"2024","AITO","annual deliveries","444,456","vehicles","s","{"x" * 200_000}","high"\n'
        )
    else:  # pragma: no cover - a typo in a case
        raise ValueError(name)
    return path


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small results folder for ``sim compare --reported FILE``."""
    out = tmp_path_factory.mktemp("reliability-inputs") / "tiny"
    status = cli.main(["run", str(TINY), "-r", "1", "--scale", "500", "--executor", "serial", "--out", str(out), "-q"])
    assert status == 0
    return out


def command(case: Case, path: Path, tmp_path: Path, results_dir: Path) -> tuple[list[str], list[Path]]:
    """The command line of a case and the outputs it must not create."""
    out = tmp_path / "out"
    if case.command == "validate":
        return ["validate", str(path)], []
    if case.command == "run":
        return ["run", str(path), "--out", str(out), "--executor", "serial", "-q"], [out]
    if case.command == "sweep":
        return ["sweep", str(path), "--out", str(out), "--executor", "serial", "-q"], [out]
    if case.command == "compare":
        return ["compare", str(results_dir), "--reported", str(path)], []
    if case.command == "fit-appeals":
        overlay = tmp_path / "overlay.yaml"
        return ["fit-appeals", str(path), "--iterations", "0", "--scale", "500", "--write", str(overlay)], [overlay]
    raise ValueError(case.command)  # pragma: no cover


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_naming_file_line_and_field(
    name: str, tmp_path: Path, results_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    path = make(case.file, tmp_path) if case.file.startswith("<") else REL / case.file
    argv, outputs = command(case, path, tmp_path, results_dir)
    capsys.readouterr()
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert status == 2, err
    assert "Traceback" not in err + out and "internal error" not in err
    first = err.splitlines()[0]
    named = REL / case.named if case.named else path
    prefix = f"{named}:{case.line}: "
    if case.field is None:
        assert first.startswith(prefix + case.says), first
    else:
        assert first.startswith(prefix + case.field + ": "), first
        assert case.says in first, first
    for p in outputs:
        assert not p.exists(), f"{p} was written"


def test_the_catalogue_has_at_least_30_kinds_and_every_file_is_used() -> None:
    assert len(CASES) >= 30
    used = {REL / c.file for c in CASES.values()} | {REL / c.named for c in CASES.values() if c.named}
    used.add(REL / "scenario" / "cycle_b.yaml")  # the other half of the cycle
    on_disk = {p for p in REL.rglob("*") if p.is_file() and p.parent.name in ("scenario", "sweep", "reported")}
    assert on_disk <= used, sorted(str(p) for p in on_disk - used)


def test_every_bad_file_says_where_it_is_wrong() -> None:
    # Each fixture names the line of its mistake in its first-line comment: the catalogue's lines agree.
    for name, case in CASES.items():
        path = REL / (case.named or case.file)
        if case.file.startswith("<") or not path.is_file() or path.suffix != ".yaml":
            continue
        first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
        if not first.startswith("#"):
            continue
        lines = {int(n) for n in re.findall(r"lines? (\d+)|and (\d+)\)", first) for n in n if n}
        assert case.line in lines, f"{name}: {path.name} says {first!r}, the case expects line {case.line}"


def test_fit_appeals_bad_through_month_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["fit-appeals", str(TINY), "--through", "2024-13", "--iterations", "0", "--write", str(tmp_path / "o.yaml")])
    err = capsys.readouterr().err
    assert status == 2 and "--through" in err and "internal error" not in err


def test_fit_appeals_into_a_missing_folder_exits_2_before_fitting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["fit-appeals", str(TINY), "--iterations", "0", "--write", str(tmp_path / "nope" / "o.yaml")])
    err = capsys.readouterr().err
    assert status == 2 and "--write" in err and "does not exist" in err
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize(
    "args, says",
    [
        (["-r", "2000000"], "--replications: at most 1,000,000 runs"),
        (["--scale", "0"], "must be > 0"),
        (["--set", "products.Z9.price=1"], "no item named 'Z9'"),
        (["--set", "buyers.price_sensitivity=.nan"], "finite number"),
        (["--executor", "threads"], "--executor"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    try:
        status = cli.main(["run", str(TINY), "--out", str(out), "-q", *args])
    except SystemExit as exc:  # argparse's own errors
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    assert status == 2 and says in err and "Traceback" not in err
    assert not out.exists()


def test_out_that_is_a_file_exits_2_and_keeps_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.txt"
    out.write_text("keep me")
    assert cli.main(["run", str(TINY), "--out", str(out), "-q", "--executor", "serial"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert out.read_text() == "keep me"
