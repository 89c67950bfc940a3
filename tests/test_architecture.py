"""The architecture as docs/ARCHITECTURE.md states it: argparse only in the command line, no module
(but the compiled kernel) over 500 lines, the module table matching the modules on disk, and the
recipes of the common changes naming files that exist, at most three each."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import ROOT

SIM = ROOT / "sim"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
#: The longest a module may be, in lines: past it, a module holds two jobs.
MAX_LINES = 500
#: The modules exempt from the limit: the compiled kernel (numba code, one function per step of a month).
LONG_MODULES = "sim/model/kernel*.py"
#: The common changes ARCHITECTURE.md gives a recipe for, by their headings.
RECIPES = ("New policy type", "New event type", "New output column", "New command", "New scenario lever")
#: A file named in backticks: a path with a folder and an extension (``sim/model/events.py``, ``docs/ODD.md``).
FILE = re.compile(r"`((?:[\w.-]+/)+[\w.-]+\.\w+)`")


def modules() -> list[str]:
    """Every module of the package, as a path relative to the repository."""
    return sorted(p.relative_to(ROOT).as_posix() for p in SIM.rglob("*.py"))


def section(text: str, heading: str) -> str:
    """The text under a ``## heading`` of ARCHITECTURE.md, up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/ARCHITECTURE.md has no section '## {heading}'"
    return match.group(1)


def recipes(text: str) -> dict[str, str]:
    """The recipes of ARCHITECTURE.md: the text of each ``### `` subsection of its common changes, by heading."""
    parts = re.split(r"^### (.+)\n", section(text, "Where to make the common changes"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def touched(recipe: str) -> list[str]:
    """The files a recipe's ``**Touches:**`` paragraph lists."""
    match = re.search(r"^\*\*Touches:\*\*(.*?)(?:\n\n|\Z)", recipe, re.M | re.S)
    assert match, "a recipe without a **Touches:** line"
    return FILE.findall(match.group(1))


def table_modules(text: str) -> list[str]:
    """The modules the module table of ARCHITECTURE.md has a row for (its first column)."""
    return re.findall(r"^\| `(sim/[\w/]+\.py)` \|", section(text, "The modules"), re.M)


@pytest.fixture(scope="module")
def architecture() -> str:
    return ARCHITECTURE.read_text()


def imports_of(path: Path) -> set[str]:
    """The top-level packages a module imports, anywhere in it (in functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_command_line_imports_argparse():
    users = [m for m in modules() if "argparse" in imports_of(ROOT / m)]
    assert users, "no module imports argparse: the walk found nothing"
    outside = [m for m in users if not m.startswith("sim/cli/")]
    assert not outside, f"argparse is for sim/cli only; imported by {outside}"


def test_no_module_but_the_kernel_is_over_500_lines():
    exempt = {p.relative_to(ROOT).as_posix() for p in ROOT.glob(LONG_MODULES)}
    assert exempt, f"{LONG_MODULES} matches no module"
    sizes = {m: len((ROOT / m).read_text().splitlines()) for m in modules() if m not in exempt}
    long = {m: n for m, n in sizes.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by what they hold): {long}"


def test_the_module_table_lists_every_module_on_disk_and_no_other(architecture):
    listed = table_modules(architecture)
    assert len(listed) == len(set(listed)), f"modules listed twice: {sorted({m for m in listed if listed.count(m) > 1})}"
    on_disk = set(modules())
    missing = sorted(m for m in on_disk - set(listed) if not m.endswith("/__init__.py"))
    assert not missing, f"modules without a line in the module table of docs/ARCHITECTURE.md: {missing}"
    gone = sorted(set(listed) - on_disk)
    assert not gone, f"the module table of docs/ARCHITECTURE.md lists modules that do not exist: {gone}"


def test_there_is_a_recipe_for_each_common_change(architecture):
    assert tuple(recipes(architecture)) == RECIPES


@pytest.mark.parametrize("name", RECIPES)
def test_a_recipe_touches_at_most_three_files_that_exist(architecture, name):
    recipe = recipes(architecture)[name]
    files = touched(recipe)
    assert 1 <= len(files) <= 3, f"{name}: touches {len(files)} files: {files}"
    assert len(set(files)) == len(files), f"{name}: a file listed twice: {files}"
    named = FILE.findall(recipe)
    missing = [f for f in named if not (ROOT / f).is_file()]
    assert not missing, f"{name}: names files that do not exist: {missing}"


def test_the_checks_read_what_they_check():
    """The parsers find what a page holds: a missing line, a fourth file and a file that is gone all show."""
    page = (
        "## The modules\n\n| module | what |\n| --- | --- |\n| `sim/model/market.py` | math |\n\n"
        "## Where to make the common changes\n\n### New thing\n\n"
        "**Touches:** `sim/a.py`, `sim/b.py`,\n`sim/c.py`, `tests/test_d.py`\n\n1. Then `sim/gone.py`.\n"
    )
    assert table_modules(page) == ["sim/model/market.py"]
    (name, recipe), = recipes(page).items()
    assert name == "New thing" and touched(recipe) == ["sim/a.py", "sim/b.py", "sim/c.py", "tests/test_d.py"]
    assert "sim/gone.py" in FILE.findall(recipe)
