"""Assembles one server's parts from its settings: the tool table at once, the core on first use.

A stdio server is started by the chat client at every launch, and most launches only list tools.
So the core (httpx, SQLite, the image parsers, JSON Schema) is imported and built by the first
tool call, not at start-up.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import anyio

from runcomfy_mcp import __version__
from runcomfy_mcp.core.price_cache import cached_prices
from runcomfy_mcp.core.spec_files import load_specs
from runcomfy_mcp.domain.specs import LISTED_TOOL_CHARS, ToolSpec, fitted_for_listing
from runcomfy_mcp.domain.tool_names import ToolNames, unique_tool_names
from runcomfy_mcp.errors import RunComfyError, SetupError
from runcomfy_mcp.mcp.tools import RunComfyTools, builtin_tool_names
from runcomfy_mcp.private_files import private_folders
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.upstream.redaction import Redactor

if TYPE_CHECKING:
    import ssl

    import httpcore
    import httpx
    from anyio.abc import TaskGroup

    from runcomfy_mcp.core.catalog import Catalog
    from runcomfy_mcp.core.films import FilmService
    from runcomfy_mcp.core.frame_inputs import FrameInputs
    from runcomfy_mcp.core.grants import GrantService
    from runcomfy_mcp.core.jobs import JobService
    from runcomfy_mcp.domain.views import Caller, JobResult
    from runcomfy_mcp.media.guarded_http import Resolver
    from runcomfy_mcp.media.sources import MediaPolicy
    from runcomfy_mcp.store.base import Store
    from runcomfy_mcp.upstream.account import AccountClient
    from runcomfy_mcp.upstream.client import RunComfyClient


logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    redactor: Redactor
    tools: RunComfyTools
    services: Services


Serving = Literal["stdio", "http"]


def reads_local_files(serving: Serving) -> bool:
    """stdio serves the person at this machine; HTTP may serve strangers, so it reads nothing local (and never
    offers to)."""
    return serving == "stdio"


def media_policy(settings: Settings, serving: Serving) -> MediaPolicy:
    from runcomfy_mcp.media.sources import MediaPolicy

    if not reads_local_files(serving):
        return MediaPolicy(local_files=False, fetch_private_urls=False, offline=settings.sandbox)
    return MediaPolicy(input_roots=settings.input_root_paths(), offline=settings.sandbox)


class Services:
    """Builds the core's services, their HTTP clients and the store the first time a tool needs them."""

    def __init__(
        self,
        settings: Settings,
        redactor: Redactor,
        serving: Serving,
        transport: httpx.AsyncBaseTransport | None,
        media_transport: httpx.AsyncBaseTransport | None,
        resolver: Resolver | None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._settings = settings
        self._redactor = redactor
        self._serving = serving
        self.background: TaskGroup | None = None  # the runtime's own work (previews queued for later)
        self._transport = transport
        self._media_transport = media_transport
        self._resolver = resolver
        self._network = network
        self.specs: Sequence[ToolSpec] = ()  # the model tools' specs, for the catalog to name them
        self._client: RunComfyClient | None = None
        self._jobs: JobService | None = None
        self._films: FilmService | None = None
        self._frames: FrameInputs | None = None
        self._catalog: Catalog | None = None
        self._store: Store | None = None
        self._grants: GrantService | None = None
        self._media_tls_context: ssl.SSLContext | None = None
        self._clients: list[httpx.AsyncClient] = []

    def set_tools(self, specs: Sequence[ToolSpec]) -> None:
        self.specs = specs
        if self._catalog is not None:
            self._catalog.set_tools(specs)

    def jobs(self) -> JobService:
        if self._jobs is None:
            self._jobs = self._build_jobs()
        return self._jobs

    def films(self) -> FilmService:
        self.jobs()  # built with the jobs: they share the history, the downloads and the output folder
        assert self._films is not None
        return self._films

    def frames(self) -> FrameInputs:
        self.jobs()
        assert self._frames is not None
        return self._frames

    def catalog(self) -> Catalog:
        if self._catalog is None:
            from runcomfy_mcp.core.catalog import Catalog

            private_folders(self._settings.data_dir.expanduser())
            client = self.client()
            self._catalog = Catalog(
                client,
                catalog_path(self._settings),
                ttl_s=self._settings.catalog_ttl_s,
                specs=self.specs,
                local_files=reads_local_files(self._serving),
                borrows_tokens=not client.has_token,  # a team server: callers' tokens read the shared catalog
            )
        return self._catalog

    def _timeout(self) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(self._settings.request_timeout_s, connect=self._settings.connect_timeout_s)

    def _media_tls(self) -> ssl.SSLContext:
        """The one certificate store of the guarded clients (media, downloads, client documents): each store loaded
        costs most of a megabyte. Without the environment's certificate settings, as those clients use no proxy
        settings either; the API client keeps its own, which honours them."""
        if self._media_tls_context is None:
            import httpx

            self._media_tls_context = httpx.create_ssl_context(trust_env=False)
        return self._media_tls_context

    def client(self) -> RunComfyClient:
        """The Model API client; only its HTTP client carries the token."""
        if self._client is None:
            import httpx

            from runcomfy_mcp.upstream.client import API_CONNECTION_LIMITS, RunComfyClient

            api_http = httpx.AsyncClient(
                timeout=self._timeout(),
                transport=self._transport,
                limits=API_CONNECTION_LIMITS,
                headers=USER_AGENT,
                follow_redirects=False,
            )
            self._clients.append(api_http)
            self._client = RunComfyClient(
                api_http,
                base_url=self._settings.base_url,
                token=self._settings.token_value(),
                redactor=self._redactor,
                retry=self._settings.retry_policy(),
            )
        return self._client

    def _build_jobs(self) -> JobService:
        import httpcore
        import httpx

        from runcomfy_mcp.core.delivery import OutputDelivery
        from runcomfy_mcp.core.film_archive import FilmArchive
        from runcomfy_mcp.core.films import FilmService
        from runcomfy_mcp.core.frame_inputs import FrameInputs
        from runcomfy_mcp.core.job_files import JobFiles
        from runcomfy_mcp.core.jobs import JobService, PollSchedule
        from runcomfy_mcp.core.wallet import Wallet
        from runcomfy_mcp.domain.amounts import MIB
        from runcomfy_mcp.media.downloads import Downloader, DownloadLimits, OutputHosts
        from runcomfy_mcp.media.guarded_http import (
            FetchSlots,
            GuardedNetwork,
            GuardedTransport,
            LargeReads,
            resolve_host,
        )
        from runcomfy_mcp.media.input_preparer import InputPreparer
        from runcomfy_mcp.media.sources import MediaLoader

        settings = self._settings
        private_folders(settings.data_dir.expanduser())  # the history and previews: the user's alone
        shared = self._serving == "http"
        resolver = self._resolver or resolve_host
        api_host = urlsplit(settings.base_url).hostname or ""

        def guarded_client(
            limits: httpx.Limits, trusted_hosts: tuple[str, ...] = (), *, bulk: bool = False
        ) -> httpx.AsyncClient:
            """`bulk`: for whole files (downloads, previews), read in large pieces."""
            transport = self._media_transport
            if transport is None:
                inner = self._network or httpcore.AnyIOBackend()
                network = GuardedNetwork(
                    resolver,
                    allow_private=not shared,
                    trusted_hosts=trusted_hosts,
                    inner=LargeReads(inner) if bulk else inner,
                )
                transport = GuardedTransport(network, limits, self._media_tls())
            # trust_env off when shared: a proxy would resolve names where the address check cannot see.
            http = httpx.AsyncClient(
                timeout=self._timeout(), transport=transport, headers=USER_AGENT, trust_env=not shared
            )
            self._clients.append(http)
            return http

        # Three clients, three pools: only the API one carries the token, and strangers' slow media hosts
        # can hold neither the API's connections nor the downloads'. Media fetches are counted by FetchSlots,
        # so their pool needs no queue of its own (a queue is what let 100 slow hosts starve everyone).
        media_http = guarded_client(
            httpx.Limits(max_connections=settings.max_fetches + 8, max_keepalive_connections=16)
        )
        download_http = guarded_client(
            httpx.Limits(max_connections=64, max_keepalive_connections=8), (api_host,), bulk=True
        )
        loader = MediaLoader(
            media_http,
            media_policy(settings, self._serving),
            resolver,
            deadline_s=settings.fetch_timeout_s,
            slots=FetchSlots(per_caller=settings.max_fetches_per_caller, total=settings.max_fetches),
        )
        downloader = Downloader(
            download_http,
            settings.output_dir,
            settings.retry_policy(),
            limits=DownloadLimits(int(settings.max_download_mb * MIB), settings.download_timeout_s),
            hosts=OutputHosts.shared(settings.base_url, settings.output_host_patterns()) if shared else None,
            reveal_paths=not shared,
        )
        wallet = Wallet(settings.spend_limits(), prices=self.catalog(), balances=self.account())
        previewer = None
        if settings.previews:
            from runcomfy_mcp.media.previews import Previewer

            previewer = Previewer(
                download_http,
                settings.data_folder() / "previews",
                max_bytes=int(settings.preview_max_mb * MIB),
                deadline_s=settings.download_timeout_s,
                hosts=downloader.hosts,
                background=self.background,
            )
        store = self.store()  # the history: the jobs and the films share it
        archive = FilmArchive(store, settings.data_dir.expanduser() / "films")

        async def result_for(request_id: str, caller: Caller) -> JobResult:
            return await self.jobs().get_result(request_id, caller=caller)

        files = JobFiles(result_for, downloader, archive, media_policy(settings, self._serving))
        self._frames = FrameInputs(files)
        self._films = FilmService(
            files,
            archive,
            store,
            settings.output_dir,
            reveal_paths=not shared,
            max_resource_bytes=int(settings.film_resource_max_mb * MIB),
        )
        return JobService(
            self.client(),
            InputPreparer(loader),
            store=store,
            delivery=OutputDelivery(downloader, previewer),
            schedule=PollSchedule(initial_s=settings.poll_initial_s, max_s=settings.poll_max_s),
            wallet=wallet,
            frames=self._frames,
        )

    def store(self) -> Store:
        """One store for the history and the OAuth grants: one pool of connections per process."""
        if self._store is None:
            self._store = open_store(self._settings)
        return self._store

    def grants(self) -> GrantService:
        """OAuth grants (HTTP with --auth oauth): kept in the history store, tokens checked with the balance call."""
        if self._grants is None:
            from runcomfy_mcp.core.grants import GrantService
            from runcomfy_mcp.core.sealing import Sealer

            account = self.account()

            async def check(token: str) -> object:
                return await account.balance(token=token)

            self._grants = GrantService(self.store(), Sealer(self._settings.oauth_keys()), check)
        return self._grants

    def client_documents_http(self) -> httpx.AsyncClient:
        """For OAuth Client ID Metadata Documents: public https hosts only, through the guarded network."""
        import httpx

        from runcomfy_mcp.media.guarded_http import GuardedNetwork, GuardedTransport, resolve_host

        limits = httpx.Limits(max_connections=16, max_keepalive_connections=4)
        transport = self._media_transport or GuardedTransport(
            GuardedNetwork(self._resolver or resolve_host, allow_private=False, inner=self._network),
            limits,
            self._media_tls(),
        )
        http = httpx.AsyncClient(
            timeout=self._timeout(), transport=transport, headers=USER_AGENT, trust_env=False, follow_redirects=False
        )
        self._clients.append(http)
        return http

    def account(self) -> AccountClient:
        """The account API (the balance): the Model API client's plumbing at the account API's URL."""
        from runcomfy_mcp.upstream.account import AccountClient

        api = self.client()
        return AccountClient(api.elsewhere(self._settings.account_base_url()))

    async def aclose(self) -> None:
        for http in self._clients:
            await http.aclose()
        if self._jobs is not None:
            await self._jobs.catch_up()  # a job the history missed is written now, if its database is back
        if self._store is not None:
            await self._store.aclose()


USER_AGENT = {"User-Agent": f"runcomfy-mcp/{__version__}"}


def require_database_driver(settings: Settings) -> None:
    """With RUNCOMFY_DATABASE_URL the history lives in PostgreSQL, whose driver is an extra: refuse to start without
    it, rather than start and fail every call. (Sandbox mode never uses the database.)"""
    if settings.history_database_url() is None:
        return
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise SetupError(
            f"RUNCOMFY_DATABASE_URL is set, but PostgreSQL's driver cannot be loaded ({exc}). Install it with "
            "pip install 'runcomfy-mcp[postgres]' (uvx: uvx --from 'runcomfy-mcp[postgres]' runcomfy-mcp), or unset "
            "RUNCOMFY_DATABASE_URL to keep the history in SQLite on this machine."
        ) from None


def open_store(settings: Settings) -> Store:
    """PostgreSQL when RUNCOMFY_DATABASE_URL names one (replicas sharing one history), else SQLite on this machine."""
    database_url = settings.history_database_url()
    if database_url:
        from runcomfy_mcp.store.postgres import PostgresStore

        return PostgresStore(database_url)
    from runcomfy_mcp.store.sqlite import SQLiteStore

    return SQLiteStore(settings.data_folder() / "jobs.sqlite3")


def catalog_path(settings: Settings) -> Path:
    """One cache per API, so no catalog replaces another's. The sandbox's has a fixed name in its own folder: its
    simulator listens on a new port at every start."""
    if settings.sandbox:
        return settings.data_folder() / "catalog.json"
    digest = hashlib.sha256(settings.base_url.encode()).hexdigest()[:10]
    return settings.data_folder() / f"catalog-{digest}.json"


def tool_names() -> ToolNames:
    """The registry every tool name is claimed in, starting with the built-in tools' own names."""
    return ToolNames(builtin_tool_names())


def load_tool_specs(settings: Settings, names: ToolNames | None = None) -> list[ToolSpec]:
    """The bundled specs and the user's own (the folder must exist only when it was set explicitly), each name
    claimed in `names`."""
    return load_specs(settings.specs_dir(), required=settings.specs_dir_required(), names=names or tool_names())


async def catalog_tool_specs(
    settings: Settings, services: Services, specs: Sequence[ToolSpec], names: ToolNames
) -> list[ToolSpec]:
    """RUNCOMFY_MODELS as tools of their own. A model that cannot be had is logged and left out, never fatal."""
    bundled = {s.model_id for s in specs}
    wanted = [m for m in settings.model_ids() if m not in bundled]
    if not wanted:
        return []
    chosen = unique_tool_names(wanted, taken=names.taken())
    made: list[ToolSpec] = []
    for model_id in wanted:
        try:
            spec = await services.catalog().spec(model_id)
        except RunComfyError as exc:
            logger.warning("RUNCOMFY_MODELS: %s is left out: %s", model_id, exc.message)
            continue
        listed = fitted_for_listing(spec)
        if listed is None:
            logger.warning(
                "RUNCOMFY_MODELS: %s is left out: its schema needs more than the %d characters a tool may take in "
                "tools/list, even with its texts shortened; run it with run_model",
                model_id,
                LISTED_TOOL_CHARS,
            )
            continue
        names.claim(chosen[model_id], f"RUNCOMFY_MODELS' {model_id}")
        made.append(listed.model_copy(update={"tool_name": chosen[model_id]}))
    return made


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    serving: Serving = "stdio",
    transport: httpx.AsyncBaseTransport | None = None,
    media_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    network: httpcore.AsyncNetworkBackend | None = None,
    notice: str | None = None,
) -> AsyncIterator[Runtime]:
    """The server's parts. Seams for tests: `transport` (the API), `media_transport` (replaces the guarded
    media and download transports), `resolver` (DNS) and `network` (the sockets under the guard)."""
    redactor = Redactor(*settings.secrets())
    require_database_driver(settings)
    names = tool_names()
    specs = load_tool_specs(settings, names)
    services = Services(settings, redactor, serving, transport, media_transport, resolver, network)
    try:
        specs += await catalog_tool_specs(settings, services, specs, names)
        services.set_tools(specs)
        prices = cached_prices(catalog_path(settings))  # a small file: the prices of the last catalog fetch
        tools = RunComfyTools(
            specs,
            services,
            redactor,
            notice,
            prices=prices,
            media_domains=settings.player_media_domains(),
            local_files=reads_local_files(serving),
            simulated=settings.sandbox,
        )
        async with anyio.create_task_group() as background:
            services.background = background
            try:
                yield Runtime(settings=settings, redactor=redactor, tools=tools, services=services)
            finally:
                background.cancel_scope.cancel()  # previews queued for later are not worth waiting for
    finally:
        await services.aclose()
