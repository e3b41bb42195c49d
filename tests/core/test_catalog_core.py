"""The catalog's parts on their own: the dialect, tool names, the search, the cache, with a fake source and clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runcomfy_mcp.core.catalog import (
    MAX_PAGES,
    PAGE_SIZE,
    Catalog,
    Listing,
    parse_entries,
)
from runcomfy_mcp.core.spec_files import load_specs
from runcomfy_mcp.domain.dialect import standard_schema
from runcomfy_mcp.domain.tool_names import tool_name_for, unique_tool_names
from runcomfy_mcp.errors import APIConnectionError, DialectError
from runcomfy_mcp.sandbox.catalog import sandbox_catalog, synthetic_catalog
from runcomfy_mcp.upstream.client import CatalogPage

pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------- the dialect


def test_the_dialect_becomes_standard_json_schema() -> None:
    schema = standard_schema(
        {
            "required": ["prompt", "ghost"],
            "properties": {
                "prompt": {"type": "string"},
                "scale": {"type": "float", "default": None, "minimum": 0},
                "steps": {"type": ["int", "null"]},
                "items": {"type": "list", "items": {"type": "double"}},
                "image": {
                    "type": "string",
                    "format": "image_uri",
                    "validations": [
                        {"validation_rule": "file_size_mb<", "validation_value": 5, "validation_error": "Under 5 MB."},
                        {"validation_rule": "fps<=", "validation_value": 30, "validation_error": "At most 30 fps"},
                    ],
                },
            },
        }
    )
    props = schema["properties"]
    assert schema["type"] == "object" and schema["required"] == ["prompt"]  # a required field that does not exist
    assert props["scale"] == {"type": "number", "minimum": 0}
    assert props["steps"]["type"] == ["integer", "null"] and props["items"]["items"]["type"] == "number"
    assert [r["validation_rule"] for r in props["image"]["validations"]] == ["file_size_mb<"]
    assert props["image"]["description"] == "Also: At most 30 fps."


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ({"properties": {"x": {"type": "tensor"}}}, "'x' has type 'tensor'"),
        ({"type": "array"}, "not an object schema"),
        ([1, 2], "not an object"),
        ({"properties": {"x": {"type": "string", "minLength": "three"}}}, "not valid JSON Schema"),
    ],
)
def test_a_schema_that_cannot_be_understood_says_why(schema: Any, why: str) -> None:
    with pytest.raises(DialectError, match=why):
        standard_schema(schema)


# ---------------------------------------------------------------- tool names


def test_tool_names_are_stable_short_and_unique() -> None:
    assert tool_name_for("kling/kling-v2-1/pro/image-to-video") == "kling_v2_1_pro_image_to_video"
    long_id = "vendor/" + "x" * 100 + "/image-to-video"
    name = tool_name_for(long_id)
    assert len(name) == 64 and name == tool_name_for(long_id)
    assert tool_name_for("acme/get_status", {"get_status"}) != "get_status" and tool_name_for("9x/m") == "m_9x_m"
    names = unique_tool_names(["a/b-c", "a/b_c", "a/b.c"], taken=["a_b_c_x"])
    assert len(set(names.values())) == 3 and all(len(n) <= 64 for n in names.values())
    assert unique_tool_names(["a/b-c"]) == {"a/b-c": "a_b_c"}


# ---------------------------------------------------------------- search


def test_search_ranks_the_words_that_name_a_model_first() -> None:
    listing = Listing(parse_entries(sandbox_catalog() + synthetic_catalog(300)), "live")
    found, total = listing.search("kling image to video", limit=7)  # 5 made-up Klings and 2 real ones
    assert all(e.model_id.startswith("kling/") and e.categories == ["image-to-video"] for e in found)
    assert total > 7
    pro, _ = listing.search("kling 2.1 pro image to video", limit=1)
    assert pro[0].model_id == "kling/kling-v2-1/pro/image-to-video"
    only_images, _ = listing.search(None, category="text-to-image", limit=500)
    assert only_images and all("text-to-image" in e.categories for e in only_images)
    assert listing.search("zzzz nothing", limit=5) == ([], 0)


def test_search_counts_each_model_once_and_only_models() -> None:
    listing = Listing(
        parse_entries(
            [
                {"model_id": "acme/glow/image-to-video", "categories": ["image-to-video", "Image to Video"]},
                {"model_id": "acme/relight", "kind": "workflow", "categories": ["image-to-video"]},
                {"model_id": "acme/glowing/text-to-image", "description": "a glow", "categories": ["text-to-image"]},
            ]
        ),
        "live",
    )
    # a category given twice is one model; a workflow is never offered, by words or by category
    assert listing.search(None, category="image-to-video") == ([listing.entries[0]], 1)
    assert listing.search("relight")[1] == 0
    # a word of the name beats the same word in a description, and the start of a name's word counts too
    found, total = listing.search("glow")
    assert [e.model_id for e in found] == ["acme/glow/image-to-video", "acme/glowing/text-to-image"] and total == 2
    assert listing.search("glo", category="text-to-image") == ([listing.entries[2]], 1)


def test_entries_are_parsed_one_by_one() -> None:
    entries = parse_entries(
        [
            {"model_id": "a/b", "categories": "text-to-image", "base_price_usd": "0.5", "mystery": 1},
            {"display_name": "no id"},
            {"model_id": "../x"},
            "not even an object",
            {"model_id": "c/d", "base_price_usd": "free", "categories": [{"name": "lip-sync"}]},
        ]
    )
    assert [e.model_id for e in entries] == ["a/b", "c/d"]
    assert entries[0].categories == ["text-to-image"] and entries[0].base_price_usd == 0.5
    assert entries[1].base_price_usd is None and entries[1].categories == ["lip-sync"]


# ---------------------------------------------------------------- the cache


class FakeSource:
    def __init__(self, models: list[dict[str, Any]]) -> None:
        self.models = models
        self.pages = 0
        self.down = False
        self.endless = False

    async def list_models(
        self, *, include_schema: bool = False, limit: int = 100, offset: int = 0, token: str | None = None
    ) -> CatalogPage:
        self.pages += 1
        if self.down:
            raise APIConnectionError("Listing RunComfy's models failed: could not be reached. Nothing was changed.")
        if self.endless:
            return CatalogPage(models=[{"model_id": f"v/m{offset + i}"} for i in range(limit)])
        return CatalogPage(models=self.models[offset : offset + limit], total=len(self.models))

    async def model(self, model_id: str, *, token: str | None = None) -> dict[str, Any]:
        raise AssertionError("not used here")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def catalog(tmp_path: Path, source: FakeSource, clock: Clock, ttl_s: float = 3600) -> Catalog:
    return Catalog(source, tmp_path / "catalog.json", ttl_s=ttl_s, specs=load_specs(), clock=clock)


async def test_pages_until_the_total_then_the_cache_answers_until_the_ttl(tmp_path: Path) -> None:
    source, clock = FakeSource(synthetic_catalog(1200)), Clock()
    first = catalog(tmp_path, source, clock)
    assert len((await first.listing()).entries) == 1200 and source.pages == 3
    clock.now += 1800
    second = catalog(tmp_path, source, clock)  # a restart: the file answers
    listing = await second.listing()
    assert listing.source == "cache" and source.pages == 3
    clock.now += 1801
    assert (await second.listing()).source == "live" and source.pages == 6


async def test_an_unreachable_catalog_falls_back_and_is_not_hammered(tmp_path: Path) -> None:
    source, clock = FakeSource(synthetic_catalog(10)), Clock()
    first = catalog(tmp_path, source, clock, ttl_s=0)
    await first.listing()
    source.down = True
    clock.now += 7200
    fallback = await first.listing()
    assert fallback.source == "cache" and "2 hours old" in (fallback.note or "") and len(fallback.entries) == 10
    pages = source.pages
    clock.now += 30
    await first.listing(refresh=True)  # within a minute of the failed try: no new request
    assert source.pages == pages
    clock.now += 31
    await first.listing()
    assert source.pages == pages + 1


async def test_no_cache_and_no_catalog_leaves_the_bundled_models(tmp_path: Path) -> None:
    source, clock = FakeSource([]), Clock()
    source.down = True
    listing = await catalog(tmp_path, source, clock).listing()
    assert listing.source == "bundled" and len(listing.entries) == 4 and "none is cached" in (listing.note or "")


async def test_a_listing_that_never_ends_is_cut_off(tmp_path: Path) -> None:
    source, clock = FakeSource([]), Clock()
    source.endless = True
    listing = await catalog(tmp_path, source, clock).listing()
    assert source.pages == MAX_PAGES and len(listing.entries) == MAX_PAGES * PAGE_SIZE


async def test_a_damaged_cache_file_is_fetched_again(tmp_path: Path) -> None:
    (tmp_path / "catalog.json").write_text("{not json")
    source, clock = FakeSource(synthetic_catalog(5)), Clock()
    listing = await catalog(tmp_path, source, clock).listing()
    assert listing.source == "live" and source.pages == 1
    assert json.loads((tmp_path / "catalog.json").read_text())["format"] == 1
