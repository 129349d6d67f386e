"""Converts CDNOW_master.txt (from the `lifetimes` package) into a CSV that `retain import` reads.

    python -m bench.cdnow_to_csv [OUT.csv]

Input columns: customer id, date YYYYMMDD, number of CDs, dollar value. Output columns:
customer_id, time (RFC 3339, midnight UTC), order_id (one per input line: CDNOW has no order ids),
quantity, unit_price, amount. Import with:

    retain import cdnow.csv --type purchase --map customer_id=customer_id --map time=time \\
        --map order_id=data.order_id --map amount=data.amount --map quantity=data.items[0].quantity \\
        --map unit_price=data.items[0].price --set data.currency=USD \\
        --set data.items[0].sku=cd --set data.items[0].category=music
"""

from __future__ import annotations

import csv
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

CDNOW_ROWS = 69_659
IMPORT_ARGS = [
    "--type",
    "purchase",
    "--map",
    "customer_id=customer_id",
    "--map",
    "time=time",
    "--map",
    "order_id=data.order_id",
    "--map",
    "amount=data.amount",
    "--map",
    "quantity=data.items[0].quantity",
    "--map",
    "unit_price=data.items[0].price",
    "--set",
    "data.currency=USD",
    "--set",
    "data.items[0].sku=cd",
    "--set",
    "data.items[0].category=music",
]


def cdnow_source() -> Path:
    import lifetimes

    return Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"


def convert(source: Path, target: Path) -> int:
    rows = 0
    with source.open() as lines, target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "time", "order_id", "quantity", "unit_price", "amount"])
        for number, line in enumerate(lines, start=1):
            parts = line.split()
            if not parts or not parts[0].isdigit():
                continue  # the header line
            customer, day, quantity, amount = parts
            # Four decimals keep unit_price * quantity within the cent tolerance of `amount`.
            unit = (Decimal(amount) / int(quantity)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
            time = f"{day[:4]}-{day[4:6]}-{day[6:]}T00:00:00Z"
            writer.writerow([customer, time, f"cdnow-{number}", quantity, unit, amount])
            rows += 1
    return rows


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("cdnow.csv")
    rows = convert(cdnow_source(), target)
    print(f"wrote {rows} purchases to {target}")


if __name__ == "__main__":
    main()
