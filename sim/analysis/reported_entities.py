"""Entity names of the reported figures mapped to the simulator's brands and products.

An ``entity`` cell of ``scenarios/reported/figures.csv`` (``"Tesla Model Y (China, BEV)"``,
``"SERES brand"``, ``"HIMA"``) is matched against the ordered pattern table :data:`ENTITY_RULES`;
the first rule that matches gives the brand, the product, the basis (the brand alone, its parent,
its alliance...) and the market. :func:`sim.analysis.reported.load_reported` applies it to every row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BRANDS = (
    "AITO", "Li Auto", "Xiaomi", "Tesla", "BMW", "Mercedes-Benz", "Audi", "Porsche", "NIO",
    "Zeekr", "Denza",
)  # fmt: skip

NEW_M7_FROM = "2023-10"
"""An ``AITO M7`` figure whose period starts on or after this month is the new M7 (Sep 2023)."""


@dataclass(frozen=True)
class EntityRule:
    """Maps entity names matching ``pattern`` (case-insensitive, from the start) to the model."""

    pattern: str
    brand: str | None
    model: str | None = None
    basis: str = ""
    market: str | None = "CN"


# First match wins: specific patterns come before general ones.
ENTITY_RULES: tuple[EntityRule, ...] = (
    EntityRule(r"EU CVD\b.*\bTesla\b", "Tesla", market="EU"),
    EntityRule(r"EU\b", None, market="EU"),
    EntityRule(r"US\b", None, market="US"),
    EntityRule(r"China vehicle sales \(CAAM, wholesale incl\. exports\)", None, market=None),
    EntityRule(r"HIMA\b", None, basis="alliance"),
    EntityRule(r"Huawei-SERES\b", "AITO", basis="parent"),
    EntityRule(r"Huawei\b", None, basis="alliance"),
    EntityRule(r"AITO \(per chinacbs; likely HIMA total\)", "AITO", basis="disputed"),
    EntityRule(r"SERES brand\b", "AITO", basis="brand"),
    EntityRule(r"SERES/AITO\b", "AITO"),
    EntityRule(r"SERES SF5\b", None),  # the pre-AITO car sold through Huawei stores
    EntityRule(r"(SERES|Chongqing Sokon)\b", None, basis="parent", market=None),
    EntityRule(r"AITO\b.* / ", "AITO"),  # several models in one row: split by item
    EntityRule(r"AITO new M7\b", "AITO", "AITO new M7"),
    EntityRule(r"AITO M7\b", "AITO", "AITO M7"),
    EntityRule(r"AITO M5 EV\b", "AITO", "AITO M5 EV"),
    EntityRule(r"AITO M5\b", "AITO", "AITO M5"),
    EntityRule(r"AITO M6\b", "AITO", "AITO M6"),
    EntityRule(r"AITO M8\b", "AITO", "AITO M8"),
    EntityRule(r"AITO M9\b", "AITO", "AITO M9"),
    EntityRule(r"AITO\b", "AITO"),
    EntityRule(r"Li Auto L6\b", "Li Auto", "Li Auto L6"),
    EntityRule(r"Li Auto L7\b", "Li Auto", "Li Auto L7"),
    EntityRule(r"Li Auto L8\b", "Li Auto", "Li Auto L8"),
    EntityRule(r"Li Auto L9\b", "Li Auto", "Li Auto L9"),
    EntityRule(r"Li Auto MEGA\b", "Li Auto", "Li Auto MEGA"),
    EntityRule(r"Li Auto i8\b", "Li Auto", "Li Auto i8"),
    EntityRule(r"Li Auto i6\b", "Li Auto", "Li Auto i6"),
    EntityRule(r"Li( Auto)?\b", "Li Auto"),
    EntityRule(r"Xiaomi SU7\b", "Xiaomi", "Xiaomi SU7"),
    EntityRule(r"Xiaomi YU7\b", "Xiaomi", "Xiaomi YU7"),
    EntityRule(r"Xiaomi\b", "Xiaomi"),
    EntityRule(r"Tesla Model 3\b", "Tesla", "Tesla Model 3"),
    EntityRule(r"Tesla Model Y\b", "Tesla", "Tesla Model Y"),
    EntityRule(r"Tesla China \(Shanghai\)", "Tesla", market=None),  # wholesale incl. exports
    EntityRule(r"Tesla\b", "Tesla"),
    EntityRule(r"BMW\b", "BMW"),
    EntityRule(r"Mercedes-Benz\b", "Mercedes-Benz"),
    EntityRule(r"Audi\b", "Audi"),
    EntityRule(r"Porsche\b", "Porsche"),
    EntityRule(r"NIO Inc\. \(group\)", "NIO", basis="group", market=None),
    EntityRule(r"NIO\b", "NIO"),
    EntityRule(r"Zeekr 001\b", "Zeekr", "Zeekr 001"),
    EntityRule(r"Zeekr 7X\b", "Zeekr", "Zeekr 7X"),
    EntityRule(r"Zeekr\b", "Zeekr"),
    EntityRule(r"Denza D9\b", "Denza", "Denza D9"),
    EntityRule(r"Denza\b", "Denza"),
)
_DEFAULT_RULE = EntityRule("", None)  # market totals, policy, other brands: China, no brand
_COMPILED_RULES = tuple((re.compile(r.pattern, re.IGNORECASE), r) for r in ENTITY_RULES)


def resolve_entity(entity: str) -> EntityRule:
    """The first rule of :data:`ENTITY_RULES` whose pattern matches the start of ``entity``.

    Args:
        entity: an entity name as written in the file, e.g. ``"Tesla Model Y (China, BEV)"``.

    Returns:
        The matching rule, or a rule with no brand and market ``CN`` when none matches.
    """
    for pattern, rule in _COMPILED_RULES:
        if pattern.match(entity.strip()):
            return rule
    return _DEFAULT_RULE
