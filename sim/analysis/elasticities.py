"""Price elasticities by finite-difference price shocks on a batch's scenario and seeds.

``sim validate-model --elasticities`` runs finite-difference price shocks on the folder's scenario
and seeds (common random numbers): each of the largest products' list price times 1.05 and
0.95 from ``--month`` on (an appended ``price`` event with ``factor``), and every product's
at once for the market. The arc elasticity of orders over the month before the shock (buyers
see a known price change a month ahead) to two months after is
``(log Q+ - log Q-) / (log 1.05 - log 0.95)``; own-price elasticities use the product's own
orders, the market's the orders of all premium products. They are compared with the
published band: premium own-price about -3 to -5, dearer cars less elastic, the market below
1 in absolute value. Analysis reads stored results; the shocks are new runs, through the
batch executors, in a temporary folder (or ``--keep DIR``).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sim.analysis.patterns import Check
from sim.runs import store
from sim.runs.manifest import new_manifest
from sim.runs.run import RunSpec, make_specs
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import Document, InputError

#: Relative price shock of the elasticity runs (+- this share).
SHOCK = 0.05
#: Published reference band of premium own-price elasticities (MISSION.md).
OWN_PRICE_BAND = (-5.0, -3.0)


def shocked(sc: Scenario, products: list[str], factor: float, month: str, end: str) -> Scenario:
    """``sc`` ending at ``end`` with the list prices of ``products`` times ``factor`` from ``month`` on."""
    from sim.scenario.load import validate_document

    data = sc.model_dump(mode="json")
    data["end"] = end
    data["name"] = sc.name
    data["events"] = [*data["events"], *({"month": month, "type": "price", "product": p, "factor": factor,
                                          "note": "elasticity shock"} for p in products)]
    return validate_document(Document(data, {}, f"<{sc.name} shocked>"))


@dataclass
class ElasticityPlan:
    scenario: Scenario
    month: str
    products: list[str]
    window: tuple[int, int]
    specs: list[RunSpec]
    labels: list[tuple[str, float]]  # per point: (product or "market", factor)


def plan_elasticities(sc: Scenario, sales: pd.DataFrame, *, month: str, products: int | None, replications: int,
                      seed: int, scale: float, kernel: str = "numba") -> ElasticityPlan:
    """Shock runs: the ``products`` largest products by orders in the window (all if None), then the market
    (``kernel``: the runs' choice kernel)."""
    m = parse_month(month)
    if not (sc.start_index + 1 <= m and m + 2 <= sc.end_index):
        raise InputError(f"--month {month}: must leave a month before it and two after inside {sc.start}..{sc.end}")
    window = (m - 1, m + 2)
    in_window = sales[sales["month"].map(lambda x: window[0] <= parse_month(x) <= window[1]) & (sales["market"] == sc.markets[0].name)]
    orders = in_window.groupby("model")["orders"].sum().sort_values(ascending=False)
    offered = [p for p in orders.index if orders[p] > 0]
    chosen = offered if products is None else offered[:products]
    if not chosen:
        raise InputError(f"no product takes orders around {month} in these results")
    end = format_month(window[1])
    specs: list[RunSpec] = []
    labels: list[tuple[str, float]] = []
    groups = [[p] for p in chosen] + [[p.name for p in sc.products]]
    for group in groups:
        for factor in (1 + SHOCK, 1 - SHOCK):
            point = len(labels)
            labels.append((group[0] if len(group) == 1 else "market", factor))
            specs += make_specs(shocked(sc, group, factor, month, end), replications, seed=seed, scale=scale,
                                first_run_id=point * replications, point=point, kernel=kernel)
    return ElasticityPlan(sc, month, chosen, window, specs, labels)


def elasticities(plan: ElasticityPlan, sales: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Arc elasticities per product and for the market, with the list price at the shock month."""
    market = plan.scenario.markets[0].name
    point = runs.set_index("run_id")["point"]
    s = sales[(sales["market"] == market) & sales["month"].map(lambda x: plan.window[0] <= parse_month(x) <= plan.window[1])]
    s = s.assign(point=s["run_id"].map(point))
    by_model = s.groupby(["point", "model"])["orders"].sum()
    total = s.groupby("point")["orders"].sum()
    price = s[s["month"] == format_month(parse_month(plan.month) - 1)].groupby("model")["list_price"].first()
    d = math.log(1 + SHOCK) - math.log(1 - SHOCK)
    rows = []
    for i in range(0, len(plan.labels), 2):
        name = plan.labels[i][0]
        if name == "market":
            up, down = float(total.get(i, 0.0)), float(total.get(i + 1, 0.0))
        else:
            up, down = float(by_model.get((i, name), 0.0)), float(by_model.get((i + 1, name), 0.0))
        e = (math.log(up) - math.log(down)) / d if up > 0 and down > 0 else math.nan
        note = ""
        if up > 0 and up == down:
            # The same orders either way: the product's order book is full (orders = its limit), so its
            # orders measure the limit, not demand.
            e, note = math.nan, "rationed: orders at the order-book limit either way"
        rows.append({"product": name, "price": float(price.get(name, math.nan)) if name != "market" else math.nan,
                     "orders_up": up, "orders_down": down, "elasticity": e, "note": note})
    return pd.DataFrame(rows)


def elasticity_checks(table: pd.DataFrame) -> list[Check]:
    own = table[table["product"] != "market"].dropna(subset=["elasticity"])
    market = table[table["product"] == "market"]["elasticity"]
    checks = []
    if len(own):
        w = (own["orders_up"] + own["orders_down"]).to_numpy()
        order = np.argsort(own["elasticity"].to_numpy())
        cw = np.cumsum(w[order]) / w.sum()
        med = float(own["elasticity"].to_numpy()[order][np.searchsorted(cw, 0.5)])
        inside = int(own["elasticity"].between(*OWN_PRICE_BAND).sum())
        rationed = int((table["note"] != "").sum()) if "note" in table.columns else 0
        checks.append(Check("premium own-price elasticity about -3 to -5", OWN_PRICE_BAND[0] <= med <= OWN_PRICE_BAND[1],
                            f"orders-weighted median {med:.2f}; {inside} of {len(own)} products inside [-5, -3]"
                            + (f" ({rationed} rationed product(s) left out)" if rationed else ""), []))
        if len(own) >= 3:
            rho = float(stats.spearmanr(own["price"], own["elasticity"].abs()).statistic)
            checks.append(Check("dearer cars less elastic", rho < 0,
                                f"Spearman correlation of price and |elasticity| {rho:+.2f} over {len(own)} products", []))
    if len(market) and np.isfinite(market.iloc[0]):
        checks.append(Check("market elasticity below 1 in absolute value", abs(float(market.iloc[0])) < 1,
                            f"market {float(market.iloc[0]):.2f}", []))
    return checks


def run_elasticities(plan: ElasticityPlan, keep: Path | None, *, workers: int | None, executor: str,
                     progress: bool) -> pd.DataFrame:
    from sim.runs.batch import run_batch

    with tempfile.TemporaryDirectory() as tmp:
        out = store.prepare_output(keep if keep is not None else Path(tmp) / "elasticity", force=True)
        manifest = new_manifest("elasticity", label="price shocks", scenario_name=plan.scenario.name,
                                month=plan.month, shock=SHOCK, labels=plan.labels,
                                scenario=plan.specs[0].scenario.model_dump(mode="json"))  # fmt: skip
        run_batch(plan.specs, out, manifest, workers=workers, executor=executor, progress=progress)
        res = store.load_results(out)
    failed = res.runs[res.runs["status"] != "ok"]
    if len(failed):
        raise RuntimeError(f"{len(failed)} shock run(s) failed; first:\n{failed['error'].iloc[0]}")
    return elasticities(plan, res.sales, res.runs)


