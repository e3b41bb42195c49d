"""Tool specs: the seeds' schemas copied exactly, checked on load, extendable without code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TOKEN, ClientFactory
from helpers import structured, text_of
from mcp import Client
from runcomfy_mcp.core.spec_files import load_specs
from runcomfy_mcp.domain.specs import (
    SpecError,
    SpecSource,
    check_json_schema,
    describe_media_rules,
    parse_spec,
)
from runcomfy_mcp.mcp.tools import builtin_tool_names
from runcomfy_mcp.sandbox.simulator import Simulator
from runcomfy_mcp.settings import Settings

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
SPEC_DIR = Path(__file__).resolve().parents[2] / "tool_specs"


def seed_schemas(path: Path) -> list[dict]:
    text, decoder, found, i = path.read_text(), json.JSONDecoder(), [], 0
    while (j := text.find("{\n", i)) >= 0:
        try:
            obj, i = decoder.raw_decode(text, j)
            found.append(obj)
        except json.JSONDecodeError:
            i = j + 1
    return found


def without_display_text(value: object) -> object:
    """A schema minus its display words (titles, descriptions), which differ between page languages."""
    if isinstance(value, dict):
        return {k: without_display_text(v) for k, v in value.items() if k not in ("title", "description")}
    if isinstance(value, list):
        return [without_display_text(v) for v in value]
    return value


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the model pages are not beside this checkout")
def test_input_and_output_schemas_match_the_model_pages_exactly() -> None:
    specs = {s.model_id: s for s in load_specs()}
    exact: dict[str, list[bool]] = {m: [] for m in specs}
    for page in sorted(SEEDS.glob("*.txt")):
        input_schema, output_schema = seed_schemas(page)[-2:]
        model_id = next(m for m in specs if f"/v1/models/{m}" in page.read_text())
        spec = specs[model_id]
        assert without_display_text(spec.input_schema) == without_display_text(input_schema)
        assert without_display_text(spec.output_schema) == without_display_text(output_schema)
        exact[model_id].append(spec.input_schema == input_schema and spec.output_schema == output_schema)
    # Every model has a page, and each spec is a verbatim copy of one of its model's pages.
    assert all(any(matches) for matches in exact.values()), exact


def test_packaged_specs_name_the_four_endpoints() -> None:
    assert {s.tool_name: s.model_id for s in load_specs()} == {
        "seedance_v1_5_pro_image_to_video": "bytedance/seedance-v1.5-pro/image-to-video",
        "dreamina_3_0_image_to_video": "bytedance/dreamina-3-0/image-to-video",
        "seedance_1_0_lite_image_to_video": "bytedance/seedance-1-0/lite/image-to-video",
        "seedance_1_0_lite_reference_to_video": "bytedance/seedance-1-0/lite/reference-to-video",
    }


def test_packaged_specs_hold_valid_json_schemas() -> None:
    for spec in load_specs():
        check_json_schema(spec, spec.tool_name)  # start-up skips this for packaged files; here it must hold


def test_packaged_specs_keep_upstream_limits() -> None:
    specs = {s.tool_name: s for s in load_specs()}
    ref = specs["seedance_1_0_lite_reference_to_video"].properties
    assert (ref["images"]["minItems"], ref["images"]["maxItems"], ref["text"]["maxLength"]) == (1, 4, 500)
    rules = specs["dreamina_3_0_image_to_video"].media_rules("image_urls")
    assert {r.validation_rule for r in rules} == {
        "file_size_mb<",
        "width_pixels<=",
        "height_pixels<=",
        "shortest_side_pixels>=",
        "width/height<=",
        "width/height>",
    }


def test_media_rules_in_plain_words() -> None:
    rules = load_specs()[0].media_rules("image_urls")
    assert describe_media_rules(rules, ["jpeg", "png"]) == (
        "each side at most 4096 px; shortest side at least 320 px; aspect ratio more than 0.33 "
        "and at most 3; file size less than 4.7 MB; JPEG or PNG only"
    )


def _spec_text(**changes: object) -> str:
    data = json.loads((SPEC_DIR / "seedance-1-0__lite__image-to-video.json").read_text())
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", ["not valid JSON"]),
        (_spec_text(tool_name="Bad Name"), ["tool_name"]),
        (
            _spec_text(
                input_schema={"type": "object", "properties": {"a": {"type": "strnig"}}}, property_docs={}, advice=[]
            ),
            ["not valid JSON Schema"],
        ),
        (_spec_text(input_schema={"type": "array"}), ["object schema"]),
        (
            _spec_text(
                input_schema={
                    "type": "object",
                    "properties": {
                        "a": {
                            "type": "string",
                            "validations": [
                                {"validation_rule": "depth_pixels<", "validation_value": 3, "validation_error": "x"}
                            ],
                        }
                    },
                }
            ),
            ["validations[0]"],
        ),
        (_spec_text(property_docs={"nope": {"title": "x"}}), ["'nope'"]),
        (_spec_text(surprise=True), ["surprise"]),
    ],
)
def test_a_broken_spec_file_is_named_in_the_error(text: str, words: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(SpecSource("extra/broken.json", text))
    assert "extra/broken.json" in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_a_broken_file_in_the_extra_folder_stops_loading_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(SpecError, match=r"bad\.json"):
        load_specs(tmp_path)


FIFTH = {
    "model_id": "bytedance/seedance-1-0/pro/text-to-video",
    "tool_name": "seedance_1_0_pro_text_to_video",
    "title": "Seedance 1.0 Pro: text to video",
    "description": "Makes a video from a prompt alone.",
    "input_schema": {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "maxLength": 2000},
            "duration": {"type": "integer", "enum": [5, 10], "default": 5},
        },
    },
    "output_schema": {"output": {"type": "object", "properties": {"video": {"type": "string", "format": "uri"}}}},
}


@pytest.mark.anyio
async def test_a_fifth_model_file_makes_a_fifth_tool(
    tmp_path: Path, connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    (tmp_path / "fifth.json").write_text(json.dumps(FIFTH))
    simulator.catalog[FIFTH["model_id"]] = {"model_id": FIFTH["model_id"]}
    settings = Settings(api_token=TOKEN, base_url=api_url, tool_specs_dir=tmp_path)
    async with connect(settings) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "seedance_1_0_pro_text_to_video" in tools
        assert sum(1 for name in tools if name not in builtin_tool_names()) == 5
        assert tools["seedance_1_0_pro_text_to_video"].input_schema["properties"]["duration"]["enum"] == [5, 10]
        bad = await client.call_tool("seedance_1_0_pro_text_to_video", {"prompt": "x", "duration": 7})
        assert bad.is_error and "duration" in text_of(bad)
        good = await client.call_tool("seedance_1_0_pro_text_to_video", {"prompt": "a sunrise"})
        assert structured(good)["model_id"] == FIFTH["model_id"]
    assert simulator.calls.submits == [{"model_id": FIFTH["model_id"], "arguments": {"prompt": "a sunrise"}}]


def test_settings_read_the_extra_folder_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "fifth.json").write_text(json.dumps(FIFTH))
    monkeypatch.setenv("RUNCOMFY_TOOL_SPECS_DIR", str(tmp_path))
    assert len(load_specs(Settings().tool_specs_dir)) == 5


@pytest.mark.anyio
async def test_sample_values_on_required_fields_are_not_shown_as_defaults(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for tool in tools.values():
        schema = tool.input_schema
        for name in schema.get("required", []):
            assert "default" not in schema["properties"][name], f"{tool.name}.{name} shows a sample as its default"
    pro = tools["seedance_v1_5_pro_image_to_video"].input_schema["properties"]
    assert "anime girl" not in json.dumps(pro), "the page's 500-character sample prompt is still shown"
    assert "examples" not in pro["first_frame_image_url"] and "playgrounds-storage" not in json.dumps(pro)
    assert pro["resolution"]["default"] == "480p"  # a real default of an optional field stays
    dreamina = tools["dreamina_3_0_image_to_video"].input_schema
    assert "prompt" in dreamina["required"] and "default" not in dreamina["properties"]["prompt"]
