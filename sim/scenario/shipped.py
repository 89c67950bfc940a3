"""The scenarios shipped with sim: found by name from any folder, in a checkout or an installed wheel.

The files live in the checkout's ``scenarios/`` folder; a wheel installs the same folder as the
package data ``sim/scenarios/`` (``pyproject.toml`` maps the package ``sim.scenarios`` onto it).
:func:`shipped_folder` finds whichever is there, so ``sim run m6_launch``,
``MarketModel(scenario="baseline")`` and ``sim.scenario_path("m6_launch")`` work wherever they run.

A *bare name* (no folder part, with or without ``.yaml``) names a shipped file only when no file
of that name exists where it is given: a file in the working folder (or beside the file that
``extends`` it) always comes first.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from sim.scenario.yamlio import InputError

#: The file that marks a folder of shipped scenarios.
MARKER = "baseline.yaml"
#: Suffixes a scenario file may have.
SUFFIXES = (".yaml", ".yml")


def shipped_folder() -> Path:
    """The folder of the shipped scenarios: the installed package data, else the checkout's ``scenarios/``.

    Raises:
        InputError: when neither is there (a broken install).
    """
    package = Path(__file__).resolve().parents[1]  # .../sim
    for folder in (package / "scenarios", package.parent / "scenarios"):
        if (folder / MARKER).is_file():
            return folder
    raise InputError(f"the scenarios shipped with sim are not installed (looked in {package / 'scenarios'} and "
                     f"{package.parent / 'scenarios'}); reinstall sim")  # fmt: skip


def shipped_file(*parts: str) -> Path:
    """The path of a file among the shipped ones (``shipped_file("reported", "figures.csv")``), for a default
    that is read later: its reader says so if it is missing (never raises here)."""
    try:
        return shipped_folder().joinpath(*parts)
    except InputError:
        return Path(__file__).resolve().parents[2].joinpath("scenarios", *parts)


def shipped_names() -> list[str]:
    """Names of the shipped scenarios, sorted: the ``*.yaml`` files at the top of :func:`shipped_folder` that
    are scenarios (a top-level ``start`` or ``extends``; ``calibration.yaml`` is not)."""
    top = re.compile(r"^(start|extends):", re.MULTILINE)
    return sorted(p.stem for p in shipped_folder().glob("*.yaml") if p.is_file() and top.search(p.read_text("utf-8")))


def scenario_path(name: str | Path) -> Path:
    """The file of a shipped scenario (or of another shipped file: ``"sweeps/m6_price_by_launch"``,
    ``"calibration"``, ``"reported/figures.csv"``).

    Args:
        name: a path relative to :func:`shipped_folder`, ``.yaml`` optional: ``"baseline"``,
            ``"m6_launch.yaml"``.

    Raises:
        InputError: when no shipped file has that name (the message lists the shipped scenarios).
    """
    rel = PurePath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise InputError(f"{name}: not the name of a shipped scenario (a name like 'baseline' or 'sweeps/NAME')")
    folder = shipped_folder()
    candidates = [folder / rel] if rel.suffix else [folder / rel.with_suffix(s) for s in SUFFIXES]
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(f"{name}: no such shipped scenario (shipped: {', '.join(shipped_names())})")


def is_bare_name(text: str | Path) -> bool:
    """Whether ``text`` is a plain file name, with no folder part (``"m6_launch"``, ``"baseline.yaml"``)."""
    p = PurePath(text)
    return len(p.parts) == 1 and p.name not in ("", ".", "..") and p.suffix in ("", *SUFFIXES)


def locate_scenario(path: str | Path) -> Path:
    """The file a scenario argument names: ``path`` itself when it exists, else, for a bare name, the
    shipped scenario of that name; else ``path`` (whose reader then says it is missing).

    Raises:
        InputError: a bare name that is neither a file here nor a shipped scenario (listing those).
    """
    p = Path(path)
    if p.is_file() or not is_bare_name(path):
        return p
    try:
        return scenario_path(p.name)
    except InputError:
        raise InputError(f"{path}: no such file, nor a shipped scenario of that name "
                         f"(shipped: {', '.join(shipped_names())})") from None  # fmt: skip
