"""`runcomfy-mcp models search|show|add`: the catalog for people, on the command line.

`add` writes a tool spec for a catalog model into the user's spec folder, in the same format as the
bundled ones, so the model is a tool of its own at the next start and its file can be read and edited.

A command for a person at a terminal, not the MCP server: no stdio transport runs in this process, so
stdout is this command's own output (what it prints is its answer); logs still go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio

from runcomfy_mcp.core.catalog import Catalog, spec_from_entry
from runcomfy_mcp.domain.ids import MAX_MODEL_ID_CHARS, MODEL_ID
from runcomfy_mcp.domain.specs import SpecSource, parse_spec
from runcomfy_mcp.domain.tool_names import ToolNames, unique_tool_names
from runcomfy_mcp.errors import RunComfyError
from runcomfy_mcp.mcp import replies
from runcomfy_mcp.runtime import Services, load_tool_specs, tool_names
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.upstream.redaction import Redactor

EXAMPLE_ID = "kling/kling-v2-1/pro/image-to-video"
SEARCH_NEXT = (
    "`runcomfy-mcp models show MODEL_ID` lists a model's inputs; `runcomfy-mcp models add MODEL_ID` makes it a tool "
    "of its own."
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="runcomfy-mcp models",
        description="Browse RunComfy's model catalog. --sandbox (anywhere) uses the simulated catalog, offline.",
    )
    commands = parser.add_subparsers(dest="action", required=True)
    search = commands.add_parser("search", help="find models by words and/or category")
    search.add_argument("query", nargs="*", help="words, e.g. kling image to video")
    search.add_argument("--category", help="e.g. image-to-video")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--refresh", action="store_true", help="read the catalog again, not the cached copy")
    show = commands.add_parser("show", help="a model's inputs, price and page")
    show.add_argument("model_id")
    add = commands.add_parser("add", help="make a model a tool of its own (a spec file in your spec folder)")
    add.add_argument("model_id")
    add.add_argument("--name", help="the tool's name (default: derived from the model id)")
    add.add_argument("--force", action="store_true", help="replace an existing spec file")
    return parser.parse_args(argv)


def configure_logging() -> None:
    """Warnings to stderr, said as this command's own. Retries are not told one by one: the final answer says how
    often RunComfy was tried, and an offline search says it came from the cache."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("runcomfy-mcp models: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for quiet in ("stamina", "runcomfy_mcp.core.catalog"):
        logging.getLogger(quiet).setLevel(logging.ERROR)


@asynccontextmanager
async def open_catalog(settings: Settings, sandbox: bool) -> AsyncIterator[Catalog]:
    async with AsyncExitStack() as stack:
        if sandbox:
            from runcomfy_mcp.sandbox.runner import sandboxed

            settings = await stack.enter_async_context(sandboxed(settings))
        services = Services(settings, Redactor(*settings.secrets()), "stdio", None, None, None)
        stack.push_async_callback(services.aclose)
        services.set_tools(load_tool_specs(settings))
        yield services.catalog()


async def run(args: argparse.Namespace, settings: Settings) -> int:
    async with open_catalog(settings, args.sandbox) as catalog:
        try:
            await _act(args, settings, catalog)
        except RunComfyError as exc:
            print(f"runcomfy-mcp models: {exc.message}", file=sys.stderr)
            return 1
    return 0


def _model_id(model_id: str) -> str:
    if MODEL_ID.fullmatch(model_id) and len(model_id) <= MAX_MODEL_ID_CHARS:
        return model_id
    raise RunComfyError(
        f"{model_id[:80]!r} is not a model id: ids look like vendor/model/task (e.g. {EXAMPLE_ID}). "
        "Find one with: runcomfy-mcp models search WORDS"
    )


async def _act(args: argparse.Namespace, settings: Settings, catalog: Catalog) -> None:
    if args.action == "search":
        query = " ".join(args.query) or None
        found = await catalog.find(query, category=args.category, limit=args.limit, refresh=args.refresh)
        print(replies.found_models(found, next_step=SEARCH_NEXT))
    elif args.action == "show":
        model = await catalog.describe(_model_id(args.model_id))
        how = (
            f"Every input is checked before anything is paid. An assistant runs it with run_model; "
            f"`runcomfy-mcp models add {model.model_id}` makes it a tool of its own."
        )
        print(replies.model_description(model, how_to_run=how))
    else:
        names = tool_names()
        load_tool_specs(settings, names)  # every name already taken: built-ins and spec files
        model_id = _model_id(args.model_id)
        path = await add_model(catalog, settings.specs_dir(), model_id, args.name, force=args.force, names=names)
        print(f"Wrote {path}.\nRestart your MCP client (or the server) and {model_id} is a tool of its own.")


async def add_model(
    catalog: Catalog, folder: Path, model_id: str, name: str | None, *, force: bool, names: ToolNames
) -> Path:
    """Writes the model's spec file; `names` holds every tool name already taken, and a clash is refused."""
    entry = await catalog.entry(model_id)
    for rewritten in (s for s in catalog.specs.values() if s.model_id == model_id):
        names.release(rewritten.tool_name)  # the model's own spec file, written again: not a clash
    tool_name = name or unique_tool_names([model_id], taken=names.taken())[model_id]
    names.claim(tool_name, f"catalog model {model_id}")
    spec = spec_from_entry(entry, tool_name)
    data = spec.model_dump(mode="json")
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path = folder / f"{tool_name}.json"
    parse_spec(SpecSource(str(path), text))  # what the server will read at start, checked now
    if path.exists() and not force:
        raise RunComfyError(f"{path} exists already; use --force to replace it.")
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: Sequence[str], settings: Settings) -> int:
    args = parse_args([a for a in argv if a != "--sandbox"])
    args.sandbox = "--sandbox" in argv or settings.sandbox
    if args.sandbox:  # the sandbox's own catalog cache and spec folder, never the real ones
        settings = settings.model_copy(update={"sandbox": True})
    return anyio.run(run, args, settings)
