"""Bad scenario files: every class of mistake gives ``file:line: field: message``, and ``sim validate``
exits 2 without a traceback. Also: ``extends`` merges as documented, and overrides apply by path.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BAD, TINY

from sim import cli
from sim.scenario.compose import resolve_document
from sim.scenario.load import load_scenario
from sim.scenario.yamlio import InputError


@dataclass(frozen=True)
class Case:
    """A bad file, where its error is (line, field; None when the whole file is wrong) and what it says."""

    file: str
    line: int
    field: str | None
    says: str


CASES = {
    "yaml syntax error": Case("syntax.yaml", 5, None, "YAML syntax error"),
    "unknown key": Case(
        "unknown_key.yaml", 5, "buyers.price_sensitivty", "unknown key (did you mean 'price_sensitivity'?)"
    ),
    "missing extends target": Case("missing_parent.yaml", 3, "extends", "no_such_parent.yaml', which does not exist"),
    "wrong type": Case("wrong_type.yaml", 6, "products[0].price", "valid number"),
    "empty file": Case("empty.yaml", 1, None, "file is empty"),
    "unknown brand": Case("unknown_brand.yaml", 6, "products[3].brand", "unknown brand 'Zeta'"),
    "impossible date": Case("bad_date.yaml", 4, "end", "month 13 is not in 1..12"),
    "negative price": Case("negative_price.yaml", 6, "products[2].price", "greater than 0, got -5"),
    "duplicate product": Case("duplicate_product.yaml", 17, "products[1].name", "duplicate name 'X1'"),
    "extends cycle": Case(
        "cycle_a.yaml", 3, "extends", "extends forms a cycle: cycle_a.yaml -> cycle_b.yaml -> cycle_a.yaml"
    ),
    "unsafe tag": Case("unsafe_tag.yaml", 4, "description", ""),
    "binary garbage": Case("binary.yaml", 1, None, "binary data"),
    "top-level list": Case("top_level_list.yaml", 1, None, "a scenario must be a mapping"),
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def expected_prefix(case: Case) -> str:
    """``file:line: field: `` (or ``file:line: `` for whole-file problems)."""
    where = f"{BAD / case.file}:{case.line}: "
    return where + (f"{case.field}: " if case.field else "")


@pytest.mark.parametrize("name", list(CASES))
def test_cli_validate_exits_2_without_traceback(name: str, capsys: pytest.CaptureFixture[str]):
    # `sim validate FILE` in this process (an exception escaping main() would fail the test).
    case = CASES[name]
    assert cli.main(["validate", str(BAD / case.file)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(expected_prefix(case)), err
    assert case.says in err
    assert "Traceback" not in err and "internal error" not in err
    assert out == ""


def test_cli_validate_subprocess_on_every_bad_file(sim_cli):
    # One `python -m sim validate FILE...` process for all the bad files (one process each would cost
    # a second apiece): exit status 2, one located message per file, no traceback, no command run.
    proc = sim_cli("validate", *(str(BAD / case.file) for case in CASES.values()))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    for name, case in CASES.items():
        assert any(line.startswith(expected_prefix(case)) and case.says in line for line in lines), name


def test_cli_validate_good_file_exits_0(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["validate", str(TINY)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{TINY}: ok (tiny: 3 products, 2 brands, 2024-01..2024-12, hash ")
    assert err == ""


def test_cli_validate_reports_every_bad_file_and_accepts_good_ones(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["validate", str(TINY), str(BAD / "empty.yaml"), str(BAD / "bad_date.yaml")]) == 2
    out, err = capsys.readouterr()
    assert out.startswith(f"{TINY}: ok")
    assert err.splitlines()[0].startswith(f"{BAD / 'empty.yaml'}:1: ")
    assert err.splitlines()[1].startswith(f"{BAD / 'bad_date.yaml'}:4: end: ")


def test_unknown_key_inside_a_list_item_suggests_the_field(tmp_path: Path):
    child = write(
        tmp_path,
        "child.yaml",
        f"""\
        extends: {TINY}
        name: child
        products:
          - name: A1
            pirce: 260000
        """,
    )
    with pytest.raises(
        InputError, match=re.escape(f"{child}:5: products[0].pirce: unknown key (did you mean 'price'?)")
    ):
        load_scenario(child)


def test_non_utf8_text_is_refused_with_its_line(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: ok\ndescription: caf\xe9\n")
    with pytest.raises(InputError, match=re.escape(f"{path}:2: not UTF-8 text")):
        load_scenario(path)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('!!python/object/apply:os.system ["touch {marker}"]', id="apply, arguments as a list"),
        pytest.param('!!python/object/apply:os.system "touch {marker}"', id="apply, argument as text"),
        pytest.param("!!python/name:os.system ''", id="name"),
    ],
)
def test_unsafe_tags_never_run(tmp_path: Path, value: str):
    marker = tmp_path / "ran"
    path = write(
        tmp_path,
        "unsafe.yaml",
        f"""\
        extends: {TINY}
        name: unsafe
        description: {value.format(marker=marker)}
        """,
    )
    with pytest.raises(InputError, match=re.escape(f"{path}:3: ")):
        load_scenario(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("tagged", "says"),
    [
        pytest.param(
            ["events: !!python/object/apply:os.system []", "buyers: !!python/object/new:dict {price_sensitivity: 2}"],
            "events: not allowed",
            id="on a list or a mapping",
        ),
        pytest.param(["description: !!python/name:os.system ''"], "description: not allowed", id="on a value"),
    ],
)
def test_a_python_tag_is_refused_naming_the_field(tmp_path: Path, tagged: list[str], says: str):
    path = write(tmp_path, "tagged.yaml", "\n".join([f"extends: {TINY}", "name: tagged", *tagged, ""]))
    with pytest.raises(InputError, match=re.escape(f"{path}:3: {says}")):
        load_scenario(path)


def test_several_problems_are_reported_one_per_line(tmp_path: Path):
    path = write(
        tmp_path,
        "two.yaml",
        f"""\
        extends: {TINY}
        name: two
        products:
          - name: A1
            price: -1
          - name: B1
            seats: 12
        """,
    )
    with pytest.raises(InputError) as info:
        load_scenario(path)
    lines = str(info.value).splitlines()
    assert f"{path}:5: products[0].price: Input should be greater than 0, got -1" in lines
    assert any(line.startswith(f"{path}:7: products[2].seats: ") for line in lines)


def test_errors_in_inherited_values_point_at_the_parent(tmp_path: Path):
    parent = write(tmp_path, "parent.yaml", TINY.read_text().replace("price_sensitivity: 1.0", "price_sensitivity: -1"))
    child = write(
        tmp_path,
        "child.yaml",
        """\
        extends: parent.yaml
        name: child
        """,
    )
    with pytest.raises(InputError) as info:
        load_scenario(child)
    line = parent.read_text().splitlines().index("  price_sensitivity: -1") + 1
    assert str(info.value).startswith(f"{parent}:{line}: buyers.price_sensitivity: ")


def test_remove_of_an_item_not_inherited_is_an_error(tmp_path: Path):
    child = write(
        tmp_path,
        "child.yaml",
        f"""\
        extends: {TINY}
        name: child
        products:
          - {{name: Z9, remove: true}}
        """,
    )
    with pytest.raises(InputError, match=re.escape(f"{child}:4: products[0]: cannot remove 'Z9'")):
        load_scenario(child)


# ------------------------------------------------------------------ extends


def test_extends_changes_adds_and_removes_products(tmp_path: Path):
    shutil.copy(TINY, tmp_path / "tiny.yaml")
    child = write(
        tmp_path,
        "child.yaml",
        """\
        extends: tiny.yaml
        name: child
        products:
          - name: A1
            price: 260000
          - {name: A2, remove: true}
          - {name: A3, brand: A, price: 450000, powertrain: BEV, launch: 2024-06, capacity: {max: 800}}
        """,
    )
    parent = load_scenario(TINY)
    merged = load_scenario(child)
    assert merged.name == "child"
    assert merged.extends == "tiny.yaml"
    assert [p.name for p in merged.products] == ["A1", "B1", "A3"]
    by_name = {p.name: p for p in merged.products}
    parent_by_name = {p.name: p for p in parent.products}
    # A1: only the price changed; everything else inherited.
    assert by_name["A1"].price == 260000
    assert by_name["A1"].model_copy(update={"price": 250000}) == parent_by_name["A1"]
    assert by_name["B1"] == parent_by_name["B1"]
    assert by_name["A3"].brand == "A" and by_name["A3"].capacity.max == 800
    # Everything outside products is inherited unchanged.
    skip = {"name", "extends", "products"}
    got = {k: v for k, v in merged.model_dump().items() if k not in skip}
    want = {k: v for k, v in parent.model_dump().items() if k not in skip}
    assert got == want
    assert merged.hash() != parent.hash()


def test_extends_merges_nested_mappings_and_replaces_plain_lists(tmp_path: Path):
    child = write(
        tmp_path,
        "child.yaml",
        f"""\
        extends: {TINY}
        name: child
        buyers:
          price_sensitivity: 2.5
        markets:
          - name: CN
            seasonality:
              lunar_new_year_depth: 0.4
        events:
          - {{month: 2024-09, type: price, product: A1, price: 240000}}
        """,
    )
    parent, merged = load_scenario(TINY), load_scenario(child)
    assert merged.buyers.price_sensitivity == 2.5
    assert merged.buyers.budget_median == parent.buyers.budget_median  # sibling keys kept
    cn, parent_cn = merged.markets[0], parent.markets[0]
    assert cn.seasonality.lunar_new_year_depth == 0.4
    assert cn.seasonality.monthly == parent_cn.seasonality.monthly
    assert cn.buyers_per_month == parent_cn.buyers_per_month
    assert [(e.month, e.product) for e in merged.events] == [("2024-09", "A1")]  # events replace, not merge


def test_extends_chain_of_three(tmp_path: Path):
    write(
        tmp_path,
        "middle.yaml",
        f"""\
        extends: {TINY}
        name: middle
        products:
          - {{name: A1, price: 260000}}
        """,
    )
    child = write(
        tmp_path,
        "child.yaml",
        """\
        extends: middle.yaml
        name: child
        products:
          - {name: B1, price: 390000}
        """,
    )
    merged = load_scenario(child)
    prices = {p.name: p.price for p in merged.products}
    assert prices == {"A1": 260000, "A2": 350000, "B1": 390000}
    doc = resolve_document(child)
    assert doc.where(("products", 2, "price")).file == str(child)
    assert doc.where(("products", 0, "price")).file == str(tmp_path / "middle.yaml")
    assert doc.where(("products", 1, "price")).file == str(TINY)


# ---------------------------------------------------------------- overrides


def test_overrides_by_path():
    sc = load_scenario(TINY, {"products.A1.price": 260000, "buyers.price_sensitivity": 2})
    assert {p.name: p.price for p in sc.products}["A1"] == 260000
    assert sc.buyers.price_sensitivity == 2
    base = load_scenario(TINY)
    assert sc.products[1:] == base.products[1:]
    assert sc.hash() != base.hash()


def test_override_of_a_list_item_by_index():
    sc = load_scenario(TINY, {"events[0].month": "2024-08", "products[2].capacity.max": 500})
    assert sc.events[0].month == "2024-08"
    assert sc.events[0].product == "B1"
    assert sc.products[2].capacity.max == 500


@pytest.mark.parametrize(
    ("override", "says"),
    [
        pytest.param(
            {"products.A1.price": -1}, r"products\[0\]\.price: Input should be greater than 0, got -1", id="bad value"
        ),
        pytest.param(
            {"buyers.price_sensitivty": 2}, r"unknown key \(did you mean 'price_sensitivity'\?\)", id="misspelt key"
        ),
    ],
)
def test_override_values_are_validated(override: dict[str, int], says: str):
    with pytest.raises(InputError, match=says):
        load_scenario(TINY, override)


def test_bad_override_value_is_not_blamed_on_the_file():
    with pytest.raises(InputError) as info:
        load_scenario(TINY, {"products.A1.price": -1})
    message = str(info.value)
    a1_line = next(i for i, text in enumerate(TINY.read_text().splitlines(), 1) if "name: A1" in text)
    assert not message.startswith(f"{TINY}:{a1_line}:"), message
    assert "products.A1.price" in message or "--set" in message


@pytest.mark.parametrize(
    "path, says",
    [
        ("products.Z9.price", "no item named 'Z9'"),
        ("events[7].month", "index 7 out of range"),
        ("name.first", "cannot descend into a value"),
        ("buyers[0]", "is not a list"),
    ],
)
def test_bad_override_paths(path: str, says: str):
    with pytest.raises(InputError, match=re.escape(says)):
        load_scenario(TINY, {path: 1})
