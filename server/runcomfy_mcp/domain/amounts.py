"""How amounts read: money as a bill writes it, counts with their noun, file sizes in the unit that fits."""

from __future__ import annotations

from decimal import Decimal

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB


def money(usd: float) -> str:
    """Dollars with cents ($0.70, $24.46, $1,250.00); an amount below a cent keeps the digits that make it
    ($0.014, $0.0001), so a price per character is never "$0.00"."""
    if usd < 0:
        return "-" + money(-usd)
    cents = round(usd, 2)
    if usd == 0 or abs(usd - cents) < 5e-7 or usd >= 1:
        return f"${usd:,.2f}"
    exact = Decimal(repr(usd)).quantize(Decimal("0.000001")).normalize()  # at most six decimals: a micro-dollar
    return f"${exact:f}"


def count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 job', '3 jobs', '0 jobs'."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def file_size(size_bytes: int | float) -> str:
    """'512 bytes', '13 KB', '2.5 MB', '1.25 GB' (KB, MB, GB of 1024)."""
    if size_bytes < KIB:
        return count(int(size_bytes), "byte")
    if round(size_bytes / KIB) < KIB:
        return f"{max(1, round(size_bytes / KIB))} KB"
    unit, scale = ("MB", MIB) if size_bytes < GIB else ("GB", GIB)
    return f"{size_bytes / scale:.2f}".rstrip("0").rstrip(".") + f" {unit}"
