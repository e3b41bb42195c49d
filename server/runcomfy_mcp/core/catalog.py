"""RunComfy's model catalog: fetched whole, cached on disk, searched in memory, turned into tool specs.

The listing is read page by page with schemas inline and kept in `catalog.json` in the data
folder, refreshed at most once per TTL (or on demand, at most once a minute). When RunComfy
cannot be reached the cache answers and says how old it is; with no cache, the bundled specs do.
The catalog's shapes are known only from RunComfy's own clients, so every entry is parsed on its
own and a bad one is skipped, never fatal.
"""

from __future__ import annotations

import bisect
import difflib
import heapq
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from runcomfy_mcp.core.price_cache import prices_path
from runcomfy_mcp.domain.bounds import clipped, measure
from runcomfy_mcp.domain.dialect import standard_schema
from runcomfy_mcp.domain.ids import MODEL_ID, check_model_id
from runcomfy_mcp.domain.pricing import Price
from runcomfy_mcp.domain.specs import ToolSpec, portable_input_schema
from runcomfy_mcp.domain.tool_names import tool_name_for
from runcomfy_mcp.domain.views import FoundModels, ModelDescription, ModelRow
from runcomfy_mcp.errors import (
    AuthenticationError,
    CatalogSchemaError,
    DialectError,
    ModelNotInCatalogError,
    RunComfyError,
    UnknownModelError,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 500  # the most the listing gives per request
MAX_PAGES = 40  # 20,000 models: far past today's catalog, and a bound on a listing that never ends
MIN_REFRESH_INTERVAL_S = 60.0  # on-demand refreshes, and retries after a failed one
CACHE_FORMAT = 1
# Every text taken from the catalog is cut to these lengths (characters): it is upstream data, and much of it is
# shown to an assistant, whose context is paid for.
TEXT_CAPS = {
    "display_name": 120,
    "description": 2_000,
    "category": 60,
    "price_unit": 40,
    "pricing_note": 300,
    "kind": 40,
    "model_url": 500,
}
MAX_CATEGORIES = 8
MAX_CATEGORIES_NAMED = 40  # in a note that lists them
MAX_ENTRY_DEPTH = 40  # a schema within it may be nested up to the dialect's 32 levels
MAX_ENTRY_VALUES = 50_000
MAX_SKIPPED_NAMED = 20
_STOP_WORDS = frozenset({"a", "an", "the", "of", "for", "with", "and", "from", "in", "on", "my", "this", "that"})
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)*")


class CatalogEntry(BaseModel):
    """One model of the listing. Unknown fields are kept; odd shapes are read leniently."""

    model_config = ConfigDict(extra="allow")

    model_id: str
    display_name: str = ""
    description: str = ""
    categories: list[str] = Field(default_factory=list)
    base_price_usd: float | None = None
    price_unit: str | None = None
    pricing_note: str | None = None  # free text RunComfy shows beside the price
    kind: str | None = None  # model, workflow, inference…: only models run through the Model API
    model_url: str | None = None
    input_schema: dict[str, Any] | None = None

    @field_validator("display_name", "description", mode="before")
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> str:
        return clipped(value.strip(), TEXT_CAPS[info.field_name or ""]) if isinstance(value, str) else ""

    @field_validator("categories", mode="before")
    @classmethod
    def _names(cls, value: Any) -> list[str]:
        items = value if isinstance(value, list) else [value] if value else []
        names = [
            i if isinstance(i, str) else i.get("name") or i.get("slug")
            for i in items[:MAX_CATEGORIES]
            if isinstance(i, str | dict)
        ]
        return [clipped(n.strip(), TEXT_CAPS["category"]) for n in names if isinstance(n, str) and n.strip()]

    @field_validator("base_price_usd", mode="before")
    @classmethod
    def _price(cls, value: Any) -> float | None:
        try:
            price = float(value)
        except (TypeError, ValueError, OverflowError):
            return None
        return price if math.isfinite(price) and price >= 0 else None

    @field_validator("price_unit", "pricing_note", "kind", mode="before")
    @classmethod
    def _optional_text(cls, value: Any, info: ValidationInfo) -> str | None:
        text = value.strip() if isinstance(value, str) else ""
        return clipped(text, TEXT_CAPS[info.field_name or ""]) if text else None

    @field_validator("model_url", mode="before")
    @classmethod
    def _page(cls, value: Any) -> str | None:
        """A link shown to a person: an https address of reasonable length, or none at all."""
        text = value.strip() if isinstance(value, str) else ""
        return text if text.startswith("https://") and len(text) <= TEXT_CAPS["model_url"] else None

    @field_validator("input_schema", mode="before")
    @classmethod
    def _schema(cls, value: Any) -> dict[str, Any] | None:
        return value if isinstance(value, dict) else None

    @property
    def name(self) -> str:
        return self.display_name or self.model_id

    @property
    def is_model(self) -> bool:
        """A model, not a workflow: entries without a kind are models (the listing did not always say)."""
        return self.kind is None or self.kind.lower() == "model"

    def one_line(self, limit: int = 140) -> str:
        text = " ".join(self.description.split())
        first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
        return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


@dataclass
class ReadEntries:
    entries: list[CatalogEntry] = field(default_factory=list)
    kept: list[Any] = field(default_factory=list)  # the raw entries that were read, as they came (for the cache)
    skipped: dict[str, str] = field(default_factory=dict)  # model id → why its entry cannot be read
    unnamed: int = 0  # entries skipped without a usable model_id


def read_entries(raw: Iterable[Any]) -> ReadEntries:
    """Each entry on its own: one that is nested too deep or has no usable id is skipped, never fatal. The depth
    is measured without recursion before anything recursive (pydantic, copies, JSON) touches the entry."""
    read = ReadEntries()
    for item in raw:
        model_id = item.get("model_id") if isinstance(item, dict) else None
        size = measure(item, stop_after=MAX_ENTRY_VALUES)
        if size.depth > MAX_ENTRY_DEPTH:
            why = f"it is nested more than {MAX_ENTRY_DEPTH} levels deep"
        elif size.values > MAX_ENTRY_VALUES:
            why = f"it holds more than {MAX_ENTRY_VALUES:,} values"
        else:
            try:
                entry = CatalogEntry.model_validate(item)
                check_model_id(entry.model_id)
            except (ValidationError, RunComfyError):
                why = "it has no usable model_id"
            else:
                read.entries.append(entry)
                read.kept.append(item)
                continue
        if isinstance(model_id, str) and MODEL_ID.fullmatch(model_id) and len(read.skipped) < MAX_SKIPPED_NAMED:
            read.skipped[model_id] = why
        else:
            read.unnamed += 1
    if read.skipped or read.unnamed:
        named = "; ".join(f"{m}: {why}" for m, why in read.skipped.items())
        logger.warning(
            "%d entries of the model listing cannot be read and were skipped%s",
            len(read.skipped) + read.unnamed,
            f" ({named})" if named else "",
        )
    return read


def parse_entries(raw: Iterable[Any]) -> list[CatalogEntry]:
    return read_entries(raw).entries


# ---------------------------------------------------------------- tool names and specs


def spec_from_entry(entry: CatalogEntry, tool_name: str | None = None) -> ToolSpec:
    if not entry.is_model:
        raise CatalogSchemaError(
            f"{entry.model_id} is a RunComfy {entry.kind}, not a model: only models run through RunComfy's Model "
            "API, which this server uses. Run it on runcomfy.com; find_models lists the models."
        )
    if entry.input_schema is None:
        raise CatalogSchemaError(
            f"RunComfy's catalog gives no input schema for {entry.model_id}, so its inputs cannot be checked and it "
            "cannot be run from here. Other models still work."
        )
    try:
        schema = standard_schema(entry.input_schema)
        return ToolSpec(
            model_id=entry.model_id,
            tool_name=tool_name or tool_name_for(entry.model_id),
            title=entry.name[:120],
            description=(entry.description or entry.name)[:1000],
            input_schema=schema,
            output_schema={"type": "object"},
        )
    except (DialectError, ValidationError) as exc:
        why = exc.message if isinstance(exc, DialectError) else str(exc.errors()[0]["msg"])
        raise CatalogSchemaError(
            f"{entry.model_id} cannot be used from here: {why}. Other models still work; this one can be run "
            "from RunComfy's own playground."
        ) from exc


# ---------------------------------------------------------------- searching


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class _SearchIndex:
    """Which models each word and phrase of the listing belongs to, built once per listing: a search looks its
    words up instead of reading every entry (a thousand entries read per search took ~10 ms).

    A term counts once per model, by its best tier: a word of the id or the name (3), of a category (2), of the
    description (1), or the start of a word of the id or the name (1.5, terms of three letters or more). A model
    that matches gains a third of the length of its longest phrase — a category or an id segment of two words or
    more, e.g. "image to video" — that the query holds as consecutive words."""

    def __init__(self, entries: Sequence[CatalogEntry]) -> None:
        self.models: list[int] = []  # positions of the entries that are models: only they are offered
        self.by_category: dict[str, list[int]] = {}  # a category as words → its models, in listing order
        self.strong: dict[str, set[int]] = {}
        self.category_words: dict[str, set[int]] = {}
        self.description_words: dict[str, set[int]] = {}
        self.phrases: dict[str, set[int]] = {}
        self.longest_phrase = 0  # in words
        for position, entry in enumerate(entries):
            if not entry.is_model:
                continue
            self.models.append(position)
            categories = [_words(c) for c in entry.categories]
            for category in dict.fromkeys(" ".join(words) for words in categories):
                self.by_category.setdefault(category, []).append(position)
            for index, words in (
                (self.strong, _words(entry.model_id) + _words(entry.display_name)),
                (self.category_words, [w for c in categories for w in c]),
                (self.description_words, _words(entry.description)),
            ):
                for word in words:
                    index.setdefault(word, set()).add(position)
            for words in [*categories, *(_words(s) for s in entry.model_id.split("/"))]:
                if len(words) > 1:
                    self.phrases.setdefault(" ".join(words), set()).add(position)
                    self.longest_phrase = max(self.longest_phrase, len(words))
        self.vocabulary = sorted(self.strong)  # the id and name words, in order, for prefixes

    def starting_with(self, term: str) -> set[int]:
        """The models with a word of their id or name that starts with `term`."""
        found: set[int] = set()
        at = bisect.bisect_left(self.vocabulary, term)
        while at < len(self.vocabulary) and self.vocabulary[at].startswith(term):
            found |= self.strong[self.vocabulary[at]]
            at += 1
        return found

    def scores(self, terms: Sequence[str], query_words: Sequence[str]) -> dict[int, tuple[int, float]]:
        """Each matching model: how many terms it matched, and its score."""
        matched: dict[int, int] = {}
        scores: dict[int, float] = {}
        for term in terms:
            strong = self.strong.get(term, set())
            in_category = self.category_words.get(term, set())
            described = self.description_words.get(term, set())
            prefixed = self.starting_with(term) if len(term) >= 3 else set()
            for position in strong | in_category | described | prefixed:
                gain = (
                    3 if position in strong else 2 if position in in_category else 1 if position in described else 1.5
                )
                matched[position] = matched.get(position, 0) + 1
                scores[position] = scores.get(position, 0.0) + gain
        phrase_bonus: dict[int, int] = {}
        for start in range(len(query_words)):
            for stop in range(start + 2, min(len(query_words), start + self.longest_phrase) + 1):
                phrase = " ".join(query_words[start:stop])
                for position in self.phrases.get(phrase, ()):
                    if position in matched and len(phrase) > phrase_bonus.get(position, 0):
                        phrase_bonus[position] = len(phrase)
        return {p: (m, scores[p] + phrase_bonus.get(p, 0) / 3) for p, m in matched.items()}


# ---------------------------------------------------------------- the catalog


class CatalogSource(Protocol):
    """Where the listing comes from (the RunComfy client). `token`: a caller's, lent for the read when the server
    has none of its own (RunComfy wants a token on the catalog too); the source prefers the server's own."""

    async def list_models(
        self, *, include_schema: bool = ..., limit: int = ..., offset: int = ..., token: str | None = ...
    ) -> Any: ...

    async def model(self, model_id: str, *, token: str | None = ...) -> dict[str, Any]: ...


@dataclass
class Listing:
    entries: list[CatalogEntry]
    source: str  # "live", "cache" or "bundled"
    fetched_at: float | None = None
    note: str | None = None  # why the answer is not fresh, when it is not
    skipped: dict[str, str] = field(default_factory=dict)  # entries that could not be read, and why
    _index: _SearchIndex = field(init=False, repr=False)
    _by_id: dict[str, CatalogEntry] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = _SearchIndex(self.entries)
        self._by_id = {e.model_id: e for e in self.entries}

    def get(self, model_id: str) -> CatalogEntry | None:
        return self._by_id.get(model_id)

    def search(self, query: str | None, category: str | None = None, limit: int = 10) -> tuple[list[CatalogEntry], int]:
        """Best matches first, and how many matched in all."""
        pool = self._index.by_category.get(" ".join(_words(category)), []) if category else self._index.models
        query_words = _words(query or "")
        terms = [t for t in dict.fromkeys(query_words) if t not in _STOP_WORDS and t != "to"]
        if not terms:
            return [self.entries[p] for p in pool[:limit]], len(pool)
        scores = self._index.scores(terms, query_words)
        if category:
            allowed = set(pool)
            scores = {p: s for p, s in scores.items() if p in allowed}
        # Most terms matched, then the highest score, then the id; the listing's order last.
        best = heapq.nsmallest(limit, scores, key=lambda p: (-scores[p][0], -scores[p][1], self.entries[p].model_id, p))
        return [self.entries[p] for p in best], len(scores)

    def closest_ids(self, model_id: str, n: int = 3) -> list[str]:
        """Ids like this one: close as text, else of the same vendor."""
        ids = list(self._by_id)
        close = difflib.get_close_matches(model_id, ids, n=n, cutoff=0.6)
        vendor = model_id.split("/", 1)[0] + "/"
        same_vendor = [i for i in ids if i.startswith(vendor) and i not in close]
        close += difflib.get_close_matches(model_id, same_vendor, n=n, cutoff=0) if same_vendor else []
        return close[:n]

    def categories(self) -> list[str]:
        return sorted({c for e in self.entries for c in e.categories})

    def age_words(self, now: float) -> str:
        return _age(now - self.fetched_at) if self.fetched_at else "of unknown age"


def _lent_token_refused(exc: AuthenticationError) -> AuthenticationError:
    """A caller's token, lent to read the catalog on a server without one, was refused: said to that caller alone."""
    return AuthenticationError(
        f"Reading RunComfy's model catalog failed: RunComfy rejected the token in your Authorization header (HTTP "
        f"{exc.status_code}) — it is missing, expired or revoked, or the account is inactive. This server reads the "
        "catalog with its callers' tokens. Nothing was changed; create a new token in your RunComfy profile (Profile "
        "→ API keys) and send it as 'Authorization: Bearer <token>' in your MCP client's settings for this server.",
        status_code=exc.status_code,
        error_code=exc.error_code,
        upstream_message=exc.upstream_message,
    )


def _skipped_note(skipped: Mapping[str, str], shown: int = 3) -> str | None:
    if not skipped:
        return None
    named = "; ".join(f"{m} ({why})" for m, why in list(skipped.items())[:shown])
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f"{len(skipped)} model(s) of RunComfy's catalog could not be read here and are left out: {named}{more}."


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s old"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes old"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} hours old"
    return f"{seconds / 86400:.0f} days old"


def bundled_entries(specs: Iterable[ToolSpec]) -> list[CatalogEntry]:
    return [
        CatalogEntry(
            model_id=s.model_id,
            display_name=s.title,
            description=s.description,
            categories=[s.model_id.rsplit("/", 1)[-1]],
            input_schema=s.input_schema,
        )
        for s in specs
    ]


class Catalog:
    """The listing, its cache file and the specs made from it. One refresh runs at a time."""

    def __init__(
        self,
        source: CatalogSource,
        cache_path: Path,
        *,
        ttl_s: float,
        specs: Sequence[ToolSpec] = (),
        clock: Callable[[], float] = time.time,
        local_files: bool = True,
        borrows_tokens: bool = False,
    ) -> None:
        """`local_files`: whether described media inputs may be local files (not for a server over HTTP).
        `borrows_tokens`: the server has no token of its own, so the listing is read with the token of the caller
        who needs it. The listing is the same for everyone; the cache never records whose token filled it, and a
        caller whose token is refused gets the error alone (nothing is cached or throttled for the others)."""
        self._source = source
        self.local_files = local_files
        self.borrows_tokens = borrows_tokens
        self.cache_path = cache_path
        self.ttl_s = ttl_s
        self.specs: dict[str, ToolSpec] = {}
        self.tool_names: dict[str, str] = {}
        self.set_tools(specs)
        self._clock = clock
        self._lock = anyio.Lock()
        self._listing: Listing | None = None
        self._last_attempt = {True: -MIN_REFRESH_INTERVAL_S, False: -MIN_REFRESH_INTERVAL_S}  # with a token or not
        self._made: dict[str, tuple[CatalogEntry, ToolSpec]] = {}  # specs made from entries, until those change
        self.pages_fetched = 0  # for benchmarks and tests: requests the listing took

    async def listing(self, *, refresh: bool = False, token: str | None = None) -> Listing:
        """The listing: fresh, cached, or the bundled models. `token`: the calling caller's, used only when the server
        has none (see `borrows_tokens`)."""
        borrowed = token if self.borrows_tokens else None
        with_token = borrowed is not None or not self.borrows_tokens
        async with self._lock:
            now = self._clock()
            current = self._listing or await anyio.to_thread.run_sync(self._read_cache)
            fresh = current is not None and current.source != "bundled" and now - (current.fetched_at or 0) < self.ttl_s
            # Retries wait a minute; one without a token (a start-up) never makes a caller with one wait.
            waiting = now - self._last_attempt[with_token] < MIN_REFRESH_INTERVAL_S
            if current is not None and ((fresh and not refresh) or waiting):
                self._listing = current
                return current
            try:
                listing = await self._fetch(borrowed)
            except AuthenticationError as exc:
                if borrowed is None:
                    self._last_attempt[with_token] = now
                    self._listing = self._fallback(current, exc, now)
                    return self._listing
                self._listing = current
                raise _lent_token_refused(exc) from exc
            except RunComfyError as exc:
                self._last_attempt[with_token] = now
                self._listing = self._fallback(current, exc, now)
                return self._listing
            self._last_attempt[with_token] = now
            self._listing = listing
            return listing

    async def _fetch(self, token: str | None) -> Listing:
        raw: list[Any] = []
        for page_number in range(MAX_PAGES):
            page = await self._source.list_models(
                include_schema=True, limit=PAGE_SIZE, offset=page_number * PAGE_SIZE, token=token
            )
            self.pages_fetched += 1
            raw.extend(page.models)
            total = page.total
            if len(page.models) < PAGE_SIZE or (total is not None and len(raw) >= total):
                break
        fetched_at = self._clock()
        read = await anyio.to_thread.run_sync(read_entries, raw)
        await anyio.to_thread.run_sync(self._write_cache, read, fetched_at)
        logger.info("model catalog fetched: %d models in %d request(s)", len(raw), page_number + 1)
        # Indexed in a worker thread too (tens of milliseconds for a thousand models): other calls go on meanwhile.
        return await anyio.to_thread.run_sync(lambda: Listing(read.entries, "live", fetched_at, skipped=read.skipped))

    def _fallback(self, current: Listing | None, exc: RunComfyError, now: float) -> Listing:
        logger.warning("model catalog not refreshed: %s", exc.message)
        why = exc.message.split(". ")[0].rstrip(".")
        if current is not None and current.source != "bundled":
            note = (
                f"RunComfy's catalog could not be read ({why}), so this comes from the copy cached on this "
                f"machine, {current.age_words(now)}."
            )
            return Listing(current.entries, "cache", current.fetched_at, note, current.skipped)
        note = (
            f"RunComfy's catalog could not be read ({why}) and none is cached yet, so only the models bundled with "
            "this server are shown."
        )
        return Listing(bundled_entries(self.specs.values()), "bundled", None, note)

    def _read_cache(self) -> Listing | None:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if data.get("format") != CACHE_FORMAT:
                return None
            return Listing(parse_entries(data["models"]), "cache", float(data["fetched_at"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            logger.warning("the catalog cache %s is unreadable; it will be fetched again", self.cache_path)
            return None

    def _write_cache(self, read: ReadEntries, fetched_at: float) -> None:
        """Atomically, so a reader never sees half a file; a disk problem only costs the cache. Only the entries
        that were read go in: the cache is never harder to read than the listing was."""
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.cache_path.with_suffix(f".{os.getpid()}.part")
            partial.write_text(json.dumps({"format": CACHE_FORMAT, "fetched_at": fetched_at, "models": read.kept}))
            os.replace(partial, self.cache_path)
            prices = {e.model_id: [e.base_price_usd, e.price_unit] for e in read.entries if e.base_price_usd}
            partial.write_text(json.dumps(prices))
            os.replace(partial, prices_path(self.cache_path))
        except OSError as exc:
            logger.warning("could not write the catalog cache %s: %s", self.cache_path, exc)

    # ------------------------------------------------------------ one model

    async def entry(self, model_id: str, *, token: str | None = None) -> CatalogEntry:
        """The model with its input schema: from the listing, else asked of RunComfy; unknown ids name the closest.
        `token`: the caller's, for reads when the server has no token of its own."""
        check_model_id(model_id)
        listing = await self.listing(token=token)
        found = listing.get(model_id)
        if found is not None and found.input_schema is not None:
            return found
        if model_id in self.specs:
            return bundled_entries([self.specs[model_id]])[0]
        try:
            raw = await self._source.model(model_id, token=token if self.borrows_tokens else None)
        except UnknownModelError:
            raw = None
        except AuthenticationError as exc:
            if self.borrows_tokens and token and found is None:
                raise _lent_token_refused(exc) from exc
            if found is None and model_id not in listing.skipped:
                raise
            raw = None
        except RunComfyError:
            if found is None and model_id not in listing.skipped:
                raise
            raw = None
        read = read_entries([raw]) if isinstance(raw, Mapping) else ReadEntries()
        if read.entries and read.entries[0].model_id == model_id:
            return read.entries[0]
        if found is not None:
            return found
        why = read.skipped.get(model_id) or listing.skipped.get(model_id)
        if why:
            raise CatalogSchemaError(
                f"{model_id} is in RunComfy's catalog, but its entry cannot be read here: {why}. Other models still "
                "work; this one can be run from RunComfy's own playground."
            )
        raise self._unknown(model_id, listing)

    def _unknown(self, model_id: str, listing: Listing) -> ModelNotInCatalogError:
        close = listing.closest_ids(model_id)
        hint = f" The closest ids are: {', '.join(close)}." if close else ""
        return ModelNotInCatalogError(
            f"There is no model {model_id!r} in RunComfy's catalog.{hint} Search with find_models (on the command "
            "line: runcomfy-mcp models search)."
        )

    async def spec(self, model_id: str, *, token: str | None = None) -> ToolSpec:
        """The model's tool spec: the bundled one when there is one, else made from its catalog entry."""
        if model_id in self.specs:
            return self.specs[model_id]
        entry = await self.entry(model_id, token=token)
        made = self._made.get(model_id)
        if made is None or made[0] is not entry:
            made = self._made[model_id] = (entry, spec_from_entry(entry))
        return made[1]

    async def price(self, model_id: str, *, token: str | None = None) -> Price | None:
        """The model's price from the listing (cached, or bundled without prices when nothing can be read)."""
        entry = (await self.listing(token=token)).get(model_id)
        if entry is None or entry.base_price_usd is None:
            return None
        return Price(entry.base_price_usd, entry.price_unit)

    def set_tools(self, specs: Iterable[ToolSpec]) -> None:
        """The models that are tools here: their specs (with hand-written docs) are used, and their names shown."""
        self.specs = {s.model_id: s for s in specs}
        self.tool_names = {s.model_id: s.tool_name for s in specs}

    def tool_name(self, model_id: str) -> str | None:
        return self.tool_names.get(model_id)

    # ------------------------------------------------------------ answers for the assistant

    def _row(self, entry: CatalogEntry) -> ModelRow:
        return ModelRow(
            model_id=entry.model_id,
            name=entry.name,
            categories=entry.categories,
            base_price_usd=entry.base_price_usd,
            price_unit=entry.price_unit,
            pricing_note=entry.pricing_note,
            description=entry.one_line(),
            tool=self.tool_name(entry.model_id),
        )

    async def find(
        self,
        query: str | None = None,
        *,
        category: str | None = None,
        limit: int = 10,
        refresh: bool = False,
        token: str | None = None,
    ) -> FoundModels:
        listing = await self.listing(refresh=refresh, token=token)
        found, total = listing.search(query, category, limit)
        note = " ".join(filter(None, [listing.note, _skipped_note(listing.skipped)])) or None
        if not found and category and category not in listing.categories():
            categories = listing.categories()
            known = ", ".join(categories[:MAX_CATEGORIES_NAMED])
            if len(categories) > MAX_CATEGORIES_NAMED:
                known += f" and {len(categories) - MAX_CATEGORIES_NAMED} more"
            asked = clipped(category, TEXT_CAPS["category"])
            note = " ".join(filter(None, [note, f"There is no category {asked!r}; the categories are: {known}."]))
        return FoundModels(models=[self._row(e) for e in found], total=total, source=listing.source, note=note)

    async def describe(self, model_id: str, *, token: str | None = None) -> ModelDescription:
        entry = await self.entry(model_id, token=token)
        listed = self._listing.get(model_id) if self._listing else None
        price_from = listed or entry
        description = ModelDescription(
            model_id=entry.model_id,
            name=entry.name,
            description=entry.description,
            categories=entry.categories,
            base_price_usd=price_from.base_price_usd,
            price_unit=price_from.price_unit,
            pricing_note=price_from.pricing_note,
            model_url=entry.model_url or (listed.model_url if listed else None),
            tool=self.tool_name(model_id),
            runnable=True,
        )
        try:
            description.input_schema = portable_input_schema(
                await self.spec(model_id, token=token), local_files=self.local_files
            )
        except CatalogSchemaError as exc:
            description.runnable, description.problem = False, exc.message
        return description
