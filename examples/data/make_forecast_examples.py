"""Writes the synthetic forecasting example files next to this script (seeded, deterministic).

    python examples/data/make_forecast_examples.py

- ``promotions.csv``: daily sales of one shop: ``time,sales,footfall,promo``. ``promo`` (0/1)
  is planned ahead (a future covariate); ``footfall`` is only counted up to today (a past-only
  covariate). Sales rise by 40 on promotion days.
- ``stores.csv``: the long format of many series, ``series_id,time,sales,holiday,size``: six
  stores whose level is set by ``size`` (static) and which close half-way on holidays (future).
- ``stores.tsf``: the same stores' sales in the Monash ``.tsf`` format, ``size`` as a numeric
  attribute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def promotions(rng: np.random.Generator, days: int = 500) -> list[str]:
    t = np.arange(days)
    promo = (rng.random(days) < 0.2).astype(int)
    weekly = 10 * np.sin(2 * np.pi * t / 7)
    footfall = 200 + 2 * weekly + rng.normal(0, 5, days)
    sales = 100 + weekly + 40 * promo + rng.normal(0, 3, days)
    return ["time,sales,footfall,promo"] + [
        f"{d},{s:.1f},{f:.0f},{p}" for d, s, f, p in zip(t, sales, footfall, promo, strict=True)]


def stores(rng: np.random.Generator, days: int = 300) -> list[tuple]:
    t = np.arange(days)
    holiday = (t % 30 == 29).astype(int)
    result = []
    for index, size in enumerate((1, 2, 5, 10, 20, 50)):
        level = 10 * size * (1 + 0.2 * np.sin(2 * np.pi * t / 7 + index))
        sales = level * (1 - 0.5 * holiday) * (1 + rng.normal(0, 0.03, days))
        result.append((f"store{index}", size, sales, holiday))
    return result


def main() -> None:
    rng = np.random.default_rng(0)
    (HERE / "promotions.csv").write_text("\n".join(promotions(rng)) + "\n")
    panel = stores(rng)
    rows = ["series_id,time,sales,holiday,size"]
    for name, size, sales, holiday in panel:
        rows += [f"{name},{d},{s:.1f},{h},{size}" for d, (s, h) in enumerate(
            zip(sales, holiday, strict=True))]
    (HERE / "stores.csv").write_text("\n".join(rows) + "\n")
    tsf = ["# synthetic store sales (examples/data/make_forecast_examples.py)", "@relation stores",
           "@attribute series_name string", "@attribute size numeric", "@frequency daily",
           "@horizon 7", "@missing false", "@equallength true", "@data"]
    tsf += [f"{name}:{size}:" + ",".join(f"{s:.1f}" for s in sales)
            for name, size, sales, _ in panel]
    (HERE / "stores.tsf").write_text("\n".join(tsf) + "\n")


if __name__ == "__main__":
    main()
