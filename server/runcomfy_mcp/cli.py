"""`runcomfy-mcp`: parse flags, build settings once, serve over stdio or streamable HTTP."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import ValidationError

from runcomfy_mcp import __version__
from runcomfy_mcp.errors import SetupError, SpecError
from runcomfy_mcp.hosting import check_oauth, http_app, is_loopback, public_url
from runcomfy_mcp.mcp.app import build_server
from runcomfy_mcp.mcp.callers import CallerIdentity
from runcomfy_mcp.runtime import Runtime, Serving, open_runtime
from runcomfy_mcp.settings import Settings
from runcomfy_mcp.upstream.redaction import RedactingFilter, Redactor

logger = logging.getLogger("runcomfy_mcp")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="runcomfy-mcp",
        description="MCP server for RunComfy's hosted models (the ByteDance seeds as tools, and the whole "
        "catalog). The token comes from RUNCOMFY_API_TOKEN.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "demo", "models", "install", "uninstall", "oauth-key"],
        default="serve",
        help="serve (default): run the MCP server; demo: a walkthrough against the sandbox, offline; "
        "models search|show|add: browse the catalog, make a model a tool (see 'models --help'); "
        "install|uninstall CLIENT: add this server to claude-desktop, claude-code, cursor or vscode; "
        "oauth-key: print a new key for RUNCOMFY_OAUTH_KEY",
    )
    parser.add_argument("--sandbox", action="store_true", help="simulate the RunComfy API locally (no token, no cost)")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio", help="default: stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument(
        "--auth",
        choices=["runcomfy-token", "oauth"],
        help="HTTP mode: oauth (the one to expose): people connect once on a consent page and apps get this server's "
        "own short-lived tokens; runcomfy-token (the default): each caller sends their RunComfy token as the bearer "
        "token and it is forwarded, for trusted setups and loopback development (overrides RUNCOMFY_AUTH)",
    )
    parser.add_argument(
        "--public-url",
        help="with --auth oauth: the https origin people reach this server at (overrides RUNCOMFY_PUBLIC_URL)",
    )
    parser.add_argument(
        "--shared-token",
        action="store_true",
        help="HTTP mode: let callers without their own token use this server's RUNCOMFY_API_TOKEN. They all "
        "pay with that token and share one history: any of them can list, read, download and cancel the others' "
        "jobs. Use it only when every caller is trusted (a team behind one login), never on an open port",
    )
    parser.add_argument(
        "--stateless",
        action="store_true",
        help="HTTP mode: keep no session between requests, so any replica behind a load balancer can answer any "
        "request (on by default with RUNCOMFY_DATABASE_URL)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        help="HTTP mode: another Host header to accept (e.g. myhost:8000); DNS-rebinding protection stays on",
    )
    parser.add_argument("--base-url", help="Model API base URL (overrides RUNCOMFY_BASE_URL)")
    parser.add_argument("--tool-specs-dir", help="folder of extra tool spec files (overrides RUNCOMFY_TOOL_SPECS_DIR)")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much the server logs, to stderr only (default INFO)",
    )
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.base_url:
        overrides["base_url"] = args.base_url
    if args.tool_specs_dir:
        overrides["tool_specs_dir"] = args.tool_specs_dir
    if args.sandbox:
        overrides["sandbox"] = True
    if args.auth:
        overrides["auth"] = args.auth
    if args.public_url:
        overrides["public_url"] = args.public_url
    return Settings(**overrides)


def configure_logging(level: str, redactor: Redactor) -> None:
    handler = logging.StreamHandler(sys.stderr)  # stdout belongs to the stdio transport
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))  # one line per request is noise


async def serve(settings: Settings, args: argparse.Namespace) -> None:
    notice = None
    oauth_url = oauth_origin(settings, args)
    async with AsyncExitStack() as stack:
        if settings.sandbox:
            from runcomfy_mcp.sandbox.runner import NOTICE, sandboxed

            settings = await stack.enter_async_context(sandboxed(settings))
            notice = NOTICE
        serving: Serving = "stdio" if args.transport == "stdio" else "http"
        runtime = await stack.enter_async_context(open_runtime(settings, serving=serving, notice=notice))
        describe_startup(runtime, args, oauth_url)
        # The sandbox charges nothing: a caller without a token shares the simulator's, in one history of their own.
        shared_token = args.shared_token or settings.sandbox
        identity = CallerIdentity(http=args.transport == "http", shared_token=shared_token, oauth=oauth_url is not None)
        server = build_server(runtime.tools, identity, consent_keys=settings.consent_keys())
        if args.transport == "stdio":
            from mcp.server.stdio import stdio_server

            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
        else:
            from runcomfy_mcp.http_server import guard_sessions, serve_http, transport_options

            stateless = args.stateless or settings.history_database_url() is not None
            app = http_app(
                runtime,
                server,
                oauth_url=oauth_url,
                host=args.host,
                transport_security=transport_security(args, oauth_url),
                stateless=stateless,
                limits=transport_options(settings, stateless),
            )
            guard_sessions(server, settings, identity, stateless)
            await serve_http(app, settings, args.host, args.port)


def oauth_origin(settings: Settings, args: argparse.Namespace) -> str | None:
    """With --auth oauth, the public origin, once the flags and settings are known to serve; else None."""
    if settings.auth != "oauth":
        return None
    keys = settings.oauth_keys()
    check_oauth(transport=args.transport, shared_token=args.shared_token, sandbox=settings.sandbox, keys=keys)
    return public_url(settings.public_url, args.host, args.port)


def transport_security(args: argparse.Namespace, public: str | None = None) -> TransportSecuritySettings:
    """Host and Origin checks stay on whatever the bind address, so a web page cannot drive the server."""
    hosts = {"127.0.0.1", "localhost", "[::1]", args.host if ":" not in args.host else f"[{args.host}]"}
    allowed_hosts = [f"{h}:*" for h in sorted(hosts)] + list(args.allowed_host)
    allowed_origins = [f"http://{h}" for h in allowed_hosts] + [f"https://{h}" for h in allowed_hosts]
    if public:  # behind a reverse proxy, requests name the public host
        netloc = urlsplit(public).netloc
        allowed_hosts += [netloc] if ":" in netloc.rsplit("]", 1)[-1] else [netloc, f"{netloc}:*"]
        allowed_origins.append(public)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )


def describe_startup(runtime: Runtime, args: argparse.Namespace, oauth_url: str | None = None) -> None:
    where = "stdio" if args.transport == "stdio" else f"http://{args.host}:{args.port}/mcp"
    logger.info(
        "runcomfy-mcp %s serving %d tools over %s; API %s",
        __version__,
        len(runtime.tools.tools),
        where,
        runtime.settings.base_url,
    )
    if args.transport == "http" and oauth_url is not None:
        logger.info(
            "HTTP mode with OAuth: connect apps to %s/mcp; people allow them once on %s/consent with their RunComfy "
            "token (checked with RunComfy, sealed at rest); apps get this server's own tokens, never forwarded",
            oauth_url,
            oauth_url,
        )
    elif args.transport == "http":
        if not is_loopback(args.host):
            logger.warning(
                "HTTP on %s without --auth oauth: callers' RunComfy tokens travel as bearer tokens and are forwarded "
                "to RunComfy (the MCP specification forbids this passthrough on a server others reach). Use --auth "
                "oauth with --public-url behind TLS, unless every caller is trusted",
                args.host,
            )
        if runtime.settings.sandbox:
            callers = (
                "any 'Authorization: Bearer <token>' works (sandbox) and each token keeps its own history; callers "
                "without one share one history"
            )
        elif args.shared_token:
            callers = (
                "each caller brings 'Authorization: Bearer <RunComfy token>'; callers without a token use the "
                "server's token and share ONE history (each can see and cancel the others' jobs)"
            )
        else:
            callers = "each caller brings 'Authorization: Bearer <RunComfy token>'; no shared token"
        logger.info("HTTP mode: %s", callers)
        shared_database = runtime.settings.history_database_url() is not None
        if args.stateless or shared_database:
            store = "PostgreSQL" if shared_database else "this machine's SQLite file"
            logger.info("stateless HTTP: no sessions, so any replica can answer any request; history in %s", store)
    elif not runtime.settings.token_value():
        logger.warning("RUNCOMFY_API_TOKEN is not set: tools are listed, but calls will explain how to set it")


def replicas_without_a_consent_key(settings: Settings, args: argparse.Namespace) -> str | None:
    """Stateless HTTP (replicas) that asks the person needs one key on every replica: a yes given to one replica's
    question may come back to another, which must be able to open it."""
    stateless = args.transport == "http" and (args.stateless or settings.database_url is not None)
    if not stateless or settings.confirm_above_usd is None or settings.consent_key is not None:
        return None
    return (
        "RUNCOMFY_CONFIRM_ABOVE_USD on a stateless HTTP server (replicas) needs RUNCOMFY_CONSENT_KEY: the same secret "
        "of at least 32 characters on every replica, so that any replica can check the person's answer to another's "
        'question. Make one with: python -c "import secrets; print(secrets.token_hex(32))"'
    )


def _settings_or_exit(make: Callable[[], Settings]) -> Settings:
    try:
        return make()
    except ValidationError as exc:
        print(f"runcomfy-mcp: bad setting: {exc.errors()[0]['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --sandbox goes anywhere, before the command too: the subcommands read it themselves.
    command = next((a for a in argv if a != "--sandbox"), None)
    if command in ("install", "uninstall", "models"):
        rest = list(argv)
        rest.remove(command)
        if command == "models":
            from runcomfy_mcp import models_cli

            models_cli.configure_logging()
            raise SystemExit(models_cli.main(rest, _settings_or_exit(Settings)))
        from runcomfy_mcp import install_cli

        raise SystemExit(install_cli.main(rest, remove=command == "uninstall"))
    args = parse_args(argv)
    if args.command == "oauth-key":
        from runcomfy_mcp.core.sealing import new_key

        # This command runs instead of a server (it exits here), so stdout carries no protocol: the key is its output.
        sys.stdout.write(new_key() + "\n")
        raise SystemExit(0)
    settings = _settings_or_exit(lambda: build_settings(args))
    if problem := replicas_without_a_consent_key(settings, args):
        print(f"runcomfy-mcp: {problem}", file=sys.stderr)
        raise SystemExit(2)
    if args.command == "demo":
        from runcomfy_mcp.demo import run_demo

        raise SystemExit(anyio.run(run_demo, args))
    configure_logging(args.log_level, Redactor(*settings.secrets()))
    try:
        anyio.run(serve, settings, args)
    except (SpecError, SetupError) as exc:
        logger.error("%s", exc)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass
