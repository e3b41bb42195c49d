"""Prompts a person can pick from a client's menu, and completion of their arguments (model ids, request ids)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mcp_types as types

from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.errors import RunComfyError

if TYPE_CHECKING:
    from runcomfy_mcp.core.services import Services

MAX_COMPLETIONS = 100  # the protocol's own limit per answer


@dataclass(frozen=True)
class PromptSpec:
    name: str
    title: str
    description: str
    arguments: tuple[tuple[str, str, bool], ...]  # (name, description, required)
    text: Callable[[Mapping[str, str]], str]

    def as_prompt(self) -> types.Prompt:
        return types.Prompt(
            name=self.name,
            title=self.title,
            description=self.description,
            arguments=[types.PromptArgument(name=n, description=d, required=r) for n, d, r in self.arguments],
        )


def _model_choice(arguments: Mapping[str, str], task: str) -> str:
    model = arguments.get("model", "").strip()
    if model:
        return f"Use the model {model} (describe_model shows its inputs)."
    return f"Choose a model: a bundled model tool, or find_models with '{task}'; describe_model shows its inputs."


def _count(arguments: Mapping[str, str], name: str, default: int, most: int) -> int:
    try:
        return max(1, min(most, int(arguments.get(name, "") or default)))
    except ValueError:
        return default


def _storyboard(arguments: Mapping[str, str]) -> str:
    shots = _count(arguments, "shots", 4, 12)
    image, music = arguments.get("image", "").strip(), arguments.get("music", "").strip()
    first = (
        f"Shot 1 starts from this image: {image}."
        if image
        else "Shot 1 starts from text: make its first frame with a text-to-image model (find_models 'text to "
        "image') and animate it like the others, so every shot has one look."
    )
    soundtrack = (
        f" Meanwhile make the music ({music}) with a music model (find_models 'music'), about as long as the "
        "film, and wait for it too."
        if music
        else ""
    )
    return (
        f"Make a short film of {shots} shots for this story: {arguments['story']}\n"
        "1. Write the storyboard: one line per shot (camera, action, mood), characters and style the same from "
        f"shot to shot.\n2. {_model_choice(arguments, 'image to video')} Quote the total cost first "
        "(estimate_cost for one shot, times the number of shots, plus the music if any) and wait for my yes.\n"
        f"3. {first} Follow it with wait_for_result until it has succeeded.{soundtrack}\n"
        "4. Each next shot continues the one before: give its first-frame image input "
        "runcomfy://jobs/<previous request_id>/frames/last, and wait for it before starting the next.\n"
        "5. Cut the shots into one film with compose_video: their request ids in order, transition 'crossfade'"
        f"{', the music as audio' if music else ''}.\n"
        "6. Show me the film (it opens in the player) and list the shots with their request ids."
    )


PROMPTS = (
    PromptSpec(
        "animate_image",
        "Animate an image",
        "Turn a photo or picture into a short video clip.",
        (
            ("image", "The image: a public https:// URL, or a local file's path.", True),  # see REMOTE_IMAGE
            ("motion", "What should happen in the clip.", True),
            ("model", "A model id (optional; completion offers the catalog's).", False),
        ),
        lambda a: (
            f"Animate this image into a short video: {a['image']}\nWhat should happen: {a['motion']}\n"
            f"{_model_choice(a, 'image to video')} Tell me the estimated cost (estimate_cost) before you submit; "
            "then follow the job with wait_for_result and show me the result."
        ),
    ),
    PromptSpec(
        "storyboard",
        "A storyboard of N shots",
        "Plan a short film as N shots, make each shot continue from the last frame of the one before, and cut "
        "them into one film with crossfades (and music, if wanted).",
        (
            ("story", "What the film is about.", True),
            ("shots", "How many shots (1-12, default 4).", False),
            ("image", "The first shot's image: a public https:// URL or a local file's path (optional).", False),
            ("music", "A soundtrack's style, e.g. 'calm piano' (optional; none if left out).", False),
            ("model", "An image-to-video model id for every shot (optional).", False),
        ),
        _storyboard,
    ),
    PromptSpec(
        "variations",
        "Variations of a prompt",
        "Make several versions of one idea, to pick the best.",
        (
            ("prompt", "The idea to vary.", True),
            ("count", "How many variations (1-8, default 3).", False),
            ("model", "A model id (optional).", False),
        ),
        lambda a: (
            f"Write {_count(a, 'count', 3, 8)} variations of this video prompt, each changing one thing "
            f"(camera, light, pace or style): {a['prompt']}\n{_model_choice(a, 'text to video')} Quote the "
            "total cost first and wait for my yes; then submit each as its own job, follow them with "
            "wait_for_result, and show them side by side with what each changed."
        ),
    ),
    PromptSpec(
        "follow_job",
        "Follow a job",
        "Check on a job submitted earlier and show its result.",
        (("request_id", "The job's request id (completion offers your recent ones).", True),),
        lambda a: (
            f"Check on the job {a['request_id']}: call wait_for_result for it (again while it runs), then show me "
            "the result and what it looks like."
        ),
    ),
)


# Over HTTP the server reads no local file, so a person is never invited to give one.
REMOTE_IMAGE = ("image", "The image: a public https:// URL, or a data: URI.", True)


def _without_local_files(prompt: PromptSpec) -> PromptSpec:
    arguments = tuple(REMOTE_IMAGE if a[0] == "image" else a for a in prompt.arguments)
    return dataclasses.replace(prompt, arguments=arguments)


class RunComfyPrompts:
    def __init__(self, services: Services, *, local_files: bool = True) -> None:
        """`local_files`: whether an image may be named by a local path (stdio) and is described so."""
        self.services = services
        self.prompts = {p.name: p if local_files else _without_local_files(p) for p in PROMPTS}

    def all(self) -> list[types.Prompt]:
        return [p.as_prompt() for p in self.prompts.values()]

    def get(self, name: str, arguments: Mapping[str, str] | None) -> types.GetPromptResult:
        """The prompt's message, or RunComfyError naming what is missing."""
        spec = self.prompts.get(name)
        if spec is None:
            raise RunComfyError(f"There is no prompt {name!r}; the prompts are: {', '.join(self.prompts)}.")
        given = {k: v for k, v in (arguments or {}).items() if isinstance(v, str)}
        missing = [n for n, _, required in spec.arguments if required and not given.get(n, "").strip()]
        if missing:
            raise RunComfyError(f"The prompt {name} needs {', '.join(missing)}.")
        message = types.PromptMessage(role="user", content=types.TextContent(text=spec.text(given)))
        return types.GetPromptResult(description=spec.description, messages=[message])

    async def complete(self, argument: str, value: str, caller: Caller | None) -> list[str]:
        """Values for a prompt's or template's argument: model ids from the catalog, request ids from your history."""
        if argument == "model":
            listing = await self.services.catalog().listing(token=caller.token if caller else None)
            needle = value.lower()
            ids = [e.model_id for e in listing.entries if needle in e.model_id.lower()]
            return sorted(ids, key=lambda i: (not i.lower().startswith(needle), i))[:MAX_COMPLETIONS]
        if argument == "request_id" and caller is not None:  # a caller without a token has no history to offer
            jobs = (await self.services.jobs().list_jobs(limit=MAX_COMPLETIONS, caller=caller)).jobs
            return [j.request_id for j in jobs if j.request_id.startswith(value)]
        return []
