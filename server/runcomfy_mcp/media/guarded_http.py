"""HTTP to hosts that strangers choose: checked addresses, bounded bodies, a cap on fetches in flight.

A caller's image URL, or a file URL an upstream returns, may point anywhere. So every connection
is opened by `GuardedNetwork`, which resolves the host once, checks every address it got, and
connects to a checked address; TLS still names the host (SNI and certificate check) and the Host
header is unchanged, because httpcore passes those from the URL, not from the address. A second
DNS answer (rebinding) never reaches a socket.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpcore
import httpx

from runcomfy_mcp.errors import (
    BlockedAddressError,
    FetchesExhaustedError,
    FetchInterruptedError,
    UnsupportedEncodingError,
)

Resolver = Callable[[str], Awaitable[list[str]]]

DECODE_STEP = 64 * 1024  # a compressed body is inflated at most this much at a time

# IPv6 forms that carry an IPv4 address: the address inside is what a connection reaches.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated (RFC 4291); never a public host


async def resolve_host(host: str) -> list[str]:
    infos = await anyio.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public_address(text: str) -> bool:
    """Whether an address literal is on the public internet, looking inside IPv6 forms that wrap IPv4."""
    ip = ipaddress.ip_address(text.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and any(ip in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(str(embedded))
        if ip in _IPV4_COMPATIBLE or ip.is_site_local:
            return False
    return ip.is_global and not ip.is_multicast


def is_address_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


Connect = Callable[[str], Awaitable[httpcore.AsyncNetworkStream]]


class _WrappedNetwork(httpcore.AsyncNetworkBackend):
    """A network backend over another one (`inner`) that changes how a TCP connection is opened (`_open`)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        async def connect(address: str) -> httpcore.AsyncNetworkStream:
            return await self._inner.connect_tcp(
                address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
            )

        return await self._open(host, connect)

    async def _open(self, host: str, connect: Connect) -> httpcore.AsyncNetworkStream:
        """A stream to `host`, by way of `connect` (the inner backend's TCP connect to one address, or name)."""
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedNetwork(_WrappedNetwork):
    """Opens TCP connections only to addresses it has checked itself, on every request and redirect hop.

    `trusted_hosts` are names the operator configured (the API's own host), reached whatever their address.
    """

    def __init__(
        self,
        resolver: Resolver = resolve_host,
        *,
        allow_private: bool,
        trusted_hosts: Iterable[str] = (),
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(inner or httpcore.AnyIOBackend())
        self._resolve = resolver
        self.allow_private = allow_private
        self._trusted = {h.lower() for h in trusted_hosts}

    async def _checked_addresses(self, host: str) -> list[str]:
        """The addresses a connection to `host` may use; raises BlockedAddressError if any is private."""
        if is_address_literal(host):
            addresses = [host]
        else:
            try:
                addresses = await self._resolve(host)
            except OSError as exc:
                raise BlockedAddressError(f"cannot be fetched: the host name {host!r} does not resolve") from exc
            if not addresses:
                raise BlockedAddressError(f"cannot be fetched: the host name {host!r} has no address")
        if not self.allow_private and host.lower() not in self._trusted:
            private = [a for a in addresses if not is_public_address(a)]
            if private:
                raise BlockedAddressError(
                    f"leads to a private or reserved network address ({private[0]}), which this server will not fetch"
                )
        return addresses

    async def _open(self, host: str, connect: Connect) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self._checked_addresses(host):
            try:
                return await connect(address)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the host's next address, as a resolver-driven connect would
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("asks for a local socket, which this server will not open")


class LargeReads(_WrappedNetwork):
    """Connections that hand httpcore up to `size` bytes a read instead of its 64 KB.

    h11 takes whatever a read brings, so a large body costs a quarter of the reads (each a pass through
    httpcore, h11 and httpx) at 256 KB, the most asyncio takes from a socket at once.
    """

    def __init__(self, inner: httpcore.AsyncNetworkBackend, size: int = 256 * 1024) -> None:
        super().__init__(inner)
        self.size = size

    async def _open(self, host: str, connect: Connect) -> httpcore.AsyncNetworkStream:
        return _LargeReadStream(await connect(host), self.size)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _LargeReadStream(await self._inner.connect_unix_socket(path, timeout, socket_options), self.size)


class _LargeReadStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, size: int) -> None:
        self._inner = inner
        self._size = size

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, self._size), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _LargeReadStream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self._size)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connections opened by a GuardedNetwork (httpx takes no network backend)."""

    def __init__(self, network: GuardedNetwork, limits: httpx.Limits, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: a certificate store shared with other transports (each store loaded costs most of a megabyte);
        None: httpx loads one of its own."""
        super().__init__(limits=limits, trust_env=False, verify=tls or True)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=self._pool._ssl_context,  # the certificate store httpx set up
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network,
        )


def content_coding(response: httpx.Response) -> str:
    return response.headers.get("content-encoding", "").strip().lower() or "identity"


@contextmanager
def transport_failures() -> Iterator[None]:
    """httpx's transport errors on a media connection as FetchInterruptedError: the one map for sources, downloads
    and previews, each of which says in its own words what the failure means for its caller."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise FetchInterruptedError("did not answer in time", type(exc).__name__) from exc
    except httpx.HTTPError as exc:  # a dropped connection, a broken chunk, a protocol error
        raise FetchInterruptedError(f"cannot be fetched ({type(exc).__name__})", type(exc).__name__) from exc


async def plain_chunks(response: httpx.Response, step: int = DECODE_STEP) -> AsyncIterator[bytes]:
    """The body with its content coding undone, never inflating more than `step` bytes at once.

    httpx inflates a whole received chunk at a time, so a 200 KB gzip body can become hundreds of
    megabytes in memory before a size check sees it. Here the caller counts and stops as it reads.
    """
    if response.is_stream_consumed:  # a body handed over whole (an in-memory response): already in memory
        yield response.content
        return
    encoding = content_coding(response)
    if encoding == "identity":
        async for chunk in response.aiter_raw():
            yield chunk
        return
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise UnsupportedEncodingError(encoding)
    async for raw in response.aiter_raw():
        pending = raw
        while pending:
            try:
                out = inflater.decompress(pending, step)
            except zlib.error as exc:
                raise UnsupportedEncodingError(f"damaged {encoding}") from exc
            pending = inflater.unconsumed_tail
            if out:
                yield out


class FetchSlots:
    """How many fetches may be in flight: per caller and in all. Nothing is kept once a caller's fetches end."""

    def __init__(self, *, per_caller: int, total: int) -> None:
        self.per_caller = per_caller
        self.total = total
        self._in_flight: dict[str, int] = {}
        self._count = 0

    @contextmanager
    def take(self, owner: str) -> Iterator[None]:
        mine = self._in_flight.get(owner, 0)
        if mine >= self.per_caller:
            raise FetchesExhaustedError(
                f"was not fetched: {self.per_caller} fetches of yours are already in flight on this server. "
                "Wait for your other calls to finish, then try again"
            )
        if self._count >= self.total:
            raise FetchesExhaustedError(
                "was not fetched: this server is busy fetching for other callers. Try again in a minute"
            )
        self._in_flight[owner] = mine + 1
        self._count += 1
        try:
            yield
        finally:
            self._count -= 1
            left = self._in_flight[owner] - 1
            if left:
                self._in_flight[owner] = left
            else:
                del self._in_flight[owner]

    def in_flight(self, owner: str) -> int:
        return self._in_flight.get(owner, 0)
