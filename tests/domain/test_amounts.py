"""Amounts as a person reads them: money with cents, counts with their noun, sizes in the unit that fits."""

from __future__ import annotations

import pytest

from runcomfy_mcp.domain.amounts import count, file_size, money


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0.7, "$0.70"),
        (0.4, "$0.40"),
        (0.45, "$0.45"),
        (0, "$0.00"),
        (24.46, "$24.46"),
        (1250, "$1,250.00"),
        (0.014, "$0.014"),  # a price per second below a cent keeps its digits
        (0.0001, "$0.0001"),
        (0.123456789, "$0.123457"),
    ],
)
def test_money_reads_like_a_bill(usd: float, shown: str) -> None:
    assert money(usd) == shown


def test_counts_agree_with_their_noun() -> None:
    assert (count(1, "job"), count(0, "job"), count(3, "job")) == ("1 job", "0 jobs", "3 jobs")


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (1, "1 byte"),
        (512, "512 bytes"),
        (13 * 1024 + 300, "13 KB"),
        (1024 * 1024 - 1, "1 MB"),
        (int(2.5 * 2**20), "2.5 MB"),
        (int(4.7 * 2**20), "4.7 MB"),
        (3 * 2**30, "3 GB"),
    ],
)
def test_file_sizes_use_the_unit_that_fits(size: int, shown: str) -> None:
    assert file_size(size) == shown
