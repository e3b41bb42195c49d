"""The prices of the last catalog fetch in a small file of their own, so tool descriptions state them at start-up
without reading (or importing what reads) the whole catalog."""

from __future__ import annotations

import json
from pathlib import Path

from runcomfy_mcp.domain.pricing import Price


def prices_path(cache_path: Path) -> Path:
    """Beside the catalog cache it summarises."""
    return cache_path.with_suffix(".prices.json")


def cached_prices(cache_path: Path) -> dict[str, Price]:
    """The prices from the last catalog fetch, or none: start-up never fails for them."""
    try:
        data = json.loads(prices_path(cache_path).read_text(encoding="utf-8"))
        return {str(k): Price(float(v[0]), v[1] if isinstance(v[1], str) else None) for k, v in data.items()}
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError):
        return {}
