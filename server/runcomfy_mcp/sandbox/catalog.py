"""The simulator's model catalog: the four bundled models plus a spread of others, written the way
RunComfy's catalog writes them (`"type": "float"`, `"default": null`, `video_uri` and `audio_uri`
inputs, the plural `image_uris`/`video_uris`/`audio_uris` on arrays, structured inputs — arrays of
objects holding media and text, with and without `maxItems` —, `type` given as a list, image and
sound outputs, prices per output and per second with a pricing note, a workflow beside the models,
one schema nobody can read).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any, Literal

from runcomfy_mcp.core.spec_files import load_specs
from runcomfy_mcp.domain.specs import ToolSpec

OutputKind = Literal["video", "image", "audio"]

_IMAGE_RULES = [
    {"validation_rule": "file_size_mb<", "validation_value": 10, "validation_error": "File size must be under 10 MB."},
    {
        "validation_rule": "shortest_side_pixels>=",
        "validation_value": 300,
        "validation_error": "The shortest side must be at least 300 px.",
    },
    {
        "validation_rule": "width/height<=",
        "validation_value": 2.5,
        "validation_error": "Aspect ratio must be at most 2.5:1.",
    },
    {
        "validation_rule": "duration_seconds<=",
        "validation_value": 0,
        "validation_error": "Animated images are not supported.",
    },
]


def _kling(tier: str, price: float, description: str) -> dict[str, Any]:
    return {
        "model_id": f"kling/kling-v2-1/{tier}/image-to-video",
        "display_name": f"Kling 2.1 {tier.capitalize()}: image to video",
        "description": description,
        "categories": ["image-to-video"],
        "base_price_usd": price,
        "price_unit": "second",
        "output_kind": "video",
        "echo_input": "image_url",  # RunComfy results sometimes echo an input beside the outputs
        "input_schema": {
            "type": "object",
            "required": ["prompt", "image_url"],
            "properties": {
                "prompt": {"type": "string", "maxLength": 2500, "description": "What happens in the clip."},
                "image_url": {
                    "type": "string",
                    "format": "image_uri",
                    "description": "The first frame.",
                    "validations": _IMAGE_RULES,
                },
                "duration": {"type": "string", "enum": ["5", "10"], "default": "5", "description": "Seconds."},
                "negative_prompt": {"type": "string", "default": None},
                "cfg_scale": {"type": "float", "minimum": 0, "maximum": 1, "default": 0.5},
            },
        },
    }


EXTRA_MODELS: list[dict[str, Any]] = [
    _kling("pro", 0.09, "Kling 2.1 Pro turns one image into a 5 or 10 second 1080p clip with strong motion."),
    _kling("standard", 0.05, "Kling 2.1 Standard animates one image into a 720p clip, quickly and cheaply."),
    {
        "model_id": "kling/kling-v2-1/master/text-to-video",
        "display_name": "Kling 2.1 Master: text to video",
        "description": "Kling's top tier makes a clip from a text prompt alone.",
        "categories": ["text-to-video"],
        "base_price_usd": 0.28,
        "price_unit": "second",
        "pricing_note": "Double with audio on.",
        "output_kind": "video",
        "input_schema": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string", "maxLength": 2500},
                "duration": {"type": "string", "enum": ["5", "10"], "default": "5"},
                "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16", "1:1"], "default": "16:9"},
            },
        },
    },
    {
        "model_id": "wan-ai/wan-2-2/a14b/text-to-video",
        "display_name": "Wan 2.2 A14B: text to video",
        "description": "Alibaba's open Wan 2.2 model makes short clips from text at 480p or 720p.",
        "categories": ["text-to-video"],
        "base_price_usd": 0.4,
        "price_unit": "video",
        "output_kind": "video",
        "input_schema": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string"},
                "resolution": {"type": "string", "enum": ["480p", "720p"], "default": "720p"},
                "num_frames": {"type": "integer", "minimum": 81, "maximum": 121, "default": 81},
                "guidance_scale": {"type": "float", "minimum": 1, "maximum": 10, "default": 3.5},
                "seed": {"type": "integer", "default": None},
            },
        },
    },
    {
        "model_id": "luma/ray-2/flash/modify-video",
        "display_name": "Luma Ray 2 Flash: modify video",
        "description": "Restyles an existing video following a prompt, keeping its motion.",
        "categories": ["video-to-video"],
        "base_price_usd": 0.12,
        "price_unit": "second",
        "output_kind": "video",
        "input_schema": {
            "type": "object",
            "required": ["video_url", "prompt"],
            "properties": {
                "video_url": {
                    "type": "string",
                    "format": "video_uri",
                    "validations": [
                        {
                            "validation_rule": "file_size_mb<",
                            "validation_value": 100,
                            "validation_error": "The video must be under 100 MB.",
                        }
                    ],
                },
                "prompt": {"type": "string"},
                "mode": {"type": "string", "enum": ["adhere_1", "flex_1", "reimagine_1"], "default": "flex_1"},
            },
        },
    },
    {
        "model_id": "kling/lipsync/audio-to-video",
        "display_name": "Kling LipSync: audio to video",
        "description": "Makes the person in a video speak a given sound file, lips in sync.",
        "categories": ["lip-sync"],
        "base_price_usd": 0.014,
        "price_unit": "second",
        "output_kind": "video",
        "input_schema": {
            "type": "object",
            "required": ["video_url", "audio_url"],
            "properties": {
                "video_url": {"type": "string", "format": "video_uri"},
                "audio_url": {"type": "string", "format": "audio_uri"},
            },
        },
    },
    {
        "model_id": "blackforestlabs/flux-2/flash/text-to-image",
        "display_name": "FLUX.2 Flash: text to image",
        "description": "Black Forest Labs' fastest FLUX.2 model draws an image from a prompt in about a second.",
        "categories": ["text-to-image"],
        "base_price_usd": 0.008,
        "price_unit": "output",
        "output_kind": "image",
        "input_schema": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string"},
                "guidance_scale": {"type": "float", "minimum": 0, "maximum": 20, "default": 2.5},
                "seed": {"type": "integer", "default": None},
                "image_size": {
                    "type": "string",
                    "enum": ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"],
                    "default": "landscape_4_3",
                },
                "output_format": {"type": "string", "enum": ["jpeg", "png", "webp"], "default": "png"},
            },
        },
    },
    {
        "model_id": "minimax/speech-2-6/hd/text-to-speech",
        "display_name": "MiniMax Speech 2.6 HD: text to speech",
        "description": "Reads a text aloud in one of several voices.",
        "categories": ["text-to-audio"],
        "base_price_usd": 0.1,
        "price_unit": "1k_characters",
        "output_kind": "audio",
        "input_schema": {
            "type": "object",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "maxLength": 5000},
                "voice_id": {"type": "string", "enum": ["calm_woman", "deep_man", "cheerful_girl"]},
                "speed": {"type": "float", "minimum": 0.5, "maximum": 2, "default": 1},
            },
        },
    },
    {
        # Structured inputs, like Kling's `elements` and `multi_prompt`: arrays of objects holding media and text,
        # neither with a maxItems (RunComfy's own nodes cap such arrays at 16).
        "model_id": "kling/kling-v3/pro/elements-to-video",
        "display_name": "Kling 3.0 Pro: elements to video",
        "description": "Builds a clip from reference elements (each a few images and a note) and a prompt per shot.",
        "categories": ["image-to-video"],
        "base_price_usd": 0.1,
        "price_unit": "second",
        "output_kind": "video",
        "input_schema": {
            "type": "object",
            "required": ["elements", "multi_prompt"],
            "properties": {
                "elements": {
                    "type": "array",
                    "description": "The characters and objects to keep consistent.",
                    "items": {
                        "type": "object",
                        "required": ["reference_image_urls"],
                        "properties": {
                            "name": {"type": "string", "maxLength": 40},
                            "reference_image_urls": {
                                "type": "array",
                                "format": "image_uris",
                                "minItems": 1,
                                "maxItems": 4,
                                "items": {"type": "string"},
                                "validations": _IMAGE_RULES,
                            },
                            "voice_url": {"type": ["string", "null"], "format": "audio_uri", "default": None},
                        },
                    },
                },
                "multi_prompt": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["prompt"],
                        "properties": {
                            "prompt": {"type": "string", "maxLength": 500},
                            "duration": {"type": ["string", "null"], "enum": ["5", "10", None], "default": None},
                        },
                    },
                },
                "seed": {"type": ["integer", "null"], "default": None},
            },
        },
    },
    {
        # Keyframes, like Runway Aleph's: an input video plus images pinned to moments of it.
        "model_id": "runway/aleph-2/video-to-video",
        "display_name": "Runway Aleph 2: video to video",
        "description": "Edits a video, steered by images pinned to chosen frames.",
        "categories": ["video-to-video"],
        "base_price_usd": 0.15,
        "price_unit": "second",
        "output_kind": "video",
        "input_schema": {
            "type": "object",
            "required": ["video_url", "prompt"],
            "properties": {
                "video_url": {"type": "string", "format": "video_uri"},
                "prompt": {"type": "string"},
                "keyframes": {
                    "type": "array",
                    "maxItems": 3,
                    "items": {
                        "type": "object",
                        "required": ["image_url", "frame_index"],
                        "properties": {
                            "image_url": {"type": "string", "format": "image_uri", "validations": _IMAGE_RULES},
                            "frame_index": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        },
    },
    {
        # The plural formats at the top: arrays of images, videos and sounds.
        "model_id": "vidu/vidu-q2/reference-to-video",
        "display_name": "Vidu Q2: references to video",
        "description": "Makes a clip from reference images, clips and sounds.",
        "categories": ["reference-to-video"],
        "base_price_usd": 0.2,
        "price_unit": "video",
        "output_kind": "video",
        "input_schema": {
            "type": "object",
            "required": ["prompt", "reference_images"],
            "properties": {
                "prompt": {"type": "string"},
                "reference_images": {"type": "array", "format": "image_uris", "items": {"type": "string"}},
                "reference_videos": {"type": "array", "format": "video_uris", "items": {"type": "string"}},
                "reference_audios": {"type": "array", "format": "audio_uris", "items": {"type": "string"}},
            },
        },
    },
    {
        "model_id": "runcomfy/workflows/portrait-relight",
        "kind": "workflow",  # the listing carries workflows beside models: not runnable through the Model API
        "display_name": "Portrait relight (workflow)",
        "description": "A ComfyUI workflow that relights a portrait.",
        "categories": ["image-to-image"],
        "base_price_usd": 0.05,
        "price_unit": "output",
        "output_kind": "image",
        "input_schema": {
            "type": "object",
            "required": ["image_url"],
            "properties": {"image_url": {"type": "string", "format": "image_uri"}},
        },
    },
    {
        "model_id": "minimax/music-1-5/text-to-music",
        "display_name": "MiniMax Music 1.5: text to music",
        "description": "Composes an instrumental piece (or a song, with lyrics) in the style a prompt describes.",
        "categories": ["text-to-music", "text-to-audio"],
        "base_price_usd": 0.03,
        "price_unit": "output",
        "output_kind": "audio",
        "input_schema": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string", "maxLength": 2000, "description": "Style, mood and instruments."},
                "lyrics": {"type": "string", "maxLength": 3000, "default": None},
                "duration": {"type": "integer", "minimum": 5, "maximum": 60, "default": 15, "description": "Seconds."},
            },
        },
    },
    {
        "model_id": "acme/holo-1/text-to-3d",
        "display_name": "Holo 1: text to 3D",
        "description": "A model whose schema uses a type no JSON Schema has.",
        "categories": ["text-to-3d"],
        "base_price_usd": 0.2,
        "price_unit": "output",
        "output_kind": "image",
        "input_schema": {
            "type": "object",
            "required": ["prompt"],
            "properties": {"prompt": {"type": "string"}, "mesh": {"type": "tensor"}},
        },
    },
]

SEED_PRICES = {  # per the model pages
    "bytedance/seedance-v1.5-pro/image-to-video": (0.026, "second"),
    "bytedance/dreamina-3-0/image-to-video": (0.14, "video"),
    "bytedance/seedance-1-0/lite/image-to-video": (0.018, "second"),
    "bytedance/seedance-1-0/lite/reference-to-video": (0.018, "second"),
}


def sandbox_catalog(extra_specs: Iterable[ToolSpec] = ()) -> list[dict[str, Any]]:
    """Every model the simulator hosts, as full entries (the simulator drops `output_kind` and `echo_input`).
    `extra_specs`: the user's own spec files, so their models run in the sandbox too."""
    entries: list[dict[str, Any]] = []
    specs = {s.model_id: s for s in [*load_specs(), *extra_specs]}
    for spec in specs.values():
        price, unit = SEED_PRICES.get(spec.model_id, (None, None))
        entries.append(
            {
                "model_id": spec.model_id,
                "display_name": spec.title,
                "description": spec.description,
                "categories": [spec.model_id.rsplit("/", 1)[-1]],
                "base_price_usd": price,
                "price_unit": unit,
                "output_kind": "video",
                "input_schema": copy.deepcopy(spec.input_schema),
            }
        )
    return entries + [copy.deepcopy(e) for e in EXTRA_MODELS if e["model_id"] not in specs]


def synthetic_catalog(count: int) -> list[dict[str, Any]]:
    """`count` made-up models of realistic size, for benchmarks of the listing and the search."""
    vendors = ["kling", "wan-ai", "luma", "minimax", "pixverse", "vidu", "hailuo", "veo", "runway", "flux"]
    tasks = ["image-to-video", "text-to-video", "video-to-video", "text-to-image", "image-to-image", "text-to-audio"]
    template = EXTRA_MODELS[0]["input_schema"]
    entries = []
    for i in range(count):
        vendor, task = vendors[i % len(vendors)], tasks[(i // len(vendors)) % len(tasks)]
        entries.append(
            {
                "model_id": f"{vendor}/{vendor}-m{i}/v{i % 7}/{task}",
                "display_name": f"{vendor.capitalize()} M{i}: {task.replace('-', ' ')}",
                "description": f"Synthetic model {i} by {vendor} for {task.replace('-', ' ')} with good quality.",
                "categories": [task],
                "base_price_usd": round(0.01 + (i % 50) / 100, 3),
                "price_unit": "second" if "video" in task else "output",
                "output_kind": "video" if task.endswith("video") else "image",
                "input_schema": json.loads(json.dumps(template)),
            }
        )
    return entries
