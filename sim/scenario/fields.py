"""The vocabulary of scenario fields: months, shares, plain names, powertrains, and the
frozen base model that refuses unknown keys and numbers that are not numbers.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from sim.scenario.months import parse_month


def month_text(v: Any) -> Any:
    """A month given as a date (``datetime.date`` or ``datetime.datetime``, ``pandas.Timestamp``,
    ``pandas.Period``, ``numpy.datetime64``) as the text ``YYYY-MM`` of the month it falls in;
    text is left as it is for :func:`_check_month` (so a day written in a file, ``2024-01-05``,
    stays an error: a file says a month as ``YYYY-MM``).

    Raises:
        ValueError: for a value that is neither text nor a date (``202605``, ``2026.5``).
    """
    if isinstance(v, str):
        return v
    if type(v).__name__ == "datetime64":  # numpy's (ISO text: 2026-05, 2026-05-15, 2026-05-15T00:00)
        return str(v)[:7]
    year, month = getattr(v, "year", None), getattr(v, "month", None)
    if isinstance(year, int) and isinstance(month, int):
        return f"{year:04d}-{month:02d}"
    raise ValueError(f"expected a month as YYYY-MM or a date, got {v!r}")


def _check_month(v: str) -> str:
    parse_month(v)
    return v.strip()


#: A calendar month: ``YYYY-MM`` text, or a date (normalised to the text of its month).
Month = Annotated[
    str,
    BeforeValidator(month_text),
    AfterValidator(_check_month),
    Field(json_schema_extra={"pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}),
]
#: Keys whose explicit value replaces what another key of the same item derives: writing
#: ``delivery_start`` (by an override or in a file that extends another) drops an inherited
#: ``delivery_lag``, which would otherwise decide it (:class:`sim.scenario.products.Product`).
REPLACES: dict[str, tuple[str, ...]] = {"delivery_start": ("delivery_lag",)}
Share = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]
NonNeg = Annotated[float, Field(ge=0.0)]
Powertrain = Literal["BEV", "EREV", "PHEV", "ICE"]
Body = Literal["sedan", "SUV", "MPV", "coupe", "wagon"]
POWERTRAINS: tuple[str, ...] = ("BEV", "EREV", "PHEV", "ICE")
BODIES: tuple[str, ...] = ("sedan", "SUV", "MPV", "coupe", "wagon")
NEV_POWERTRAINS = ("BEV", "EREV", "PHEV")


def _check_name(v: str) -> str:
    # A scenario's name becomes a folder name (results/<name>/...): it must stay one folder.
    if not v.strip() or v.strip() in (".", "..") or any(c in v for c in "/\\") or not v.isprintable():
        raise ValueError(f"must be a plain name (no '/', '\\', control characters; not '.' or '..'), got {v!r}")
    if len(v) > 200:
        raise ValueError(f"must be at most 200 characters, got {len(v)}")
    return v


#: A name that is also a folder name (scenarios, sweeps).
PlainName = Annotated[str, AfterValidator(_check_name)]


def _check_item_name(v: str) -> str:
    # Names are how the scenario's parts refer to each other (a product's brand, an event's product)
    # and how paths name items: an empty or invisible difference would pass as another name.
    if not v.strip():
        raise ValueError("must not be empty")
    if not v.isprintable():
        raise ValueError(f"must not contain control characters (a tab, a line break...), got {v!r}")
    if v != v.strip():
        raise ValueError(f"must not begin or end with spaces, got {v!r}")
    if len(v) > 200:
        raise ValueError(f"must be at most 200 characters, got {len(v)}")
    return v


#: The name of an item of a scenario (a market, brand, product, segment, target, tariff, subsidy, channel).
ItemName = Annotated[str, AfterValidator(_check_item_name)]


#: Largest magnitude of a real number in a scenario: far beyond any quantity of the model (a year
#: of the whole market is about 1e12 RMB), far below what its float32 arrays hold (3.4e38).
MAX_MAGNITUDE = 1e15


def _number_kind(tp: Any) -> str | None:
    """``"float"`` or ``"int"`` when a field's type is a number (optionally ``None``; not ``bool``), else None."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _number_kind(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = {_number_kind(a) for a in typing.get_args(tp) if a is not type(None)}
        return None if None in kinds or not kinds else ("float" if "float" in kinds else "int")
    return {int: "int", float: "float"}.get(tp)


@functools.cache
def _field_kind(model: type[BaseModel], name: str) -> tuple[str | None, str | None]:
    """Number kind of field ``name`` of ``model``, and of its items if it is a list or mapping."""
    tp = model.model_fields[name].annotation
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    items = _number_kind(args[0]) if origin is list else _number_kind(args[1]) if origin is dict else None
    return _number_kind(tp), items


def _check_number(value: Any, kind: str | None, where: str = "") -> None:
    if kind is None:
        return
    if isinstance(value, bool):
        # Pydantic would read true/false as 1/0; in a scenario that is a slip (price: true).
        raise ValueError(f"{where}Input should be a number, got {str(value).lower()}")
    if kind == "float" and isinstance(value, (int, float)) and math.isfinite(value) and abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"{where}Input should be between -{MAX_MAGNITUDE:.0e} and {MAX_MAGNITUDE:.0e}, got {value!r}")


class Frozen(BaseModel):
    """Base of every scenario model: immutable, unknown keys refused, finite plain numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Numbers are numbers (not true/false) of a sane size (:data:`MAX_MAGNITUDE`)."""
        if info.field_name is None or not isinstance(value, (bool, int, float, list, dict)):
            return value
        kind, item_kind = _field_kind(cls, info.field_name)
        if isinstance(value, (list, dict)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                _check_number(item, item_kind, f"[{key!r}]: ")
        else:
            _check_number(value, kind)
        return value
