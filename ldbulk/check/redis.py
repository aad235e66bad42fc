"""Check a Redis store from this machine: DNS, TCP, TLS, AUTH, PING, ROLE, server version.

DNS, TCP and the TLS handshake are probed with asyncio directly, so each failure is named for the
step it belongs to (``name not found``, ``connection refused``, ``TLS: certificate verify
failed``); the protocol steps then run on redis-py's asyncio client, over a connection of its
own. TLS verification is always on: the system's CAs (``SSL_CERT_FILE`` honoured, as Python does)
or ``cafile``, and the host name must match the certificate.

A peer that does not answer in RESP is not quoted: the manifest names the host, so the peer may
be anything (an SSH server whose banner names its software, a web server whose page quotes what
it was sent), and check's output is read by people and kept by CI. It is said to be no Redis
server, with how many bytes it sent (:func:`not_resp`).
"""

from __future__ import annotations

import ast
import asyncio
import socket
import ssl
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, InvalidResponse, RedisError, ResponseError

from ldbulk.api.models import RedisConfig
from ldbulk.check.model import StepLog, shown
from ldbulk.text import printable

# getaddrinfo's answers for a name that does not exist (glibc, musl, macOS).
_NO_SUCH_NAME = {
    getattr(socket, name)
    for name in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY")
    if hasattr(socket, name)
}


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """A verifying client context: the system's CAs, or ``cafile``'s. Never unverified."""
    return ssl.create_default_context(cafile=cafile)


async def check_redis(
    config: RedisConfig, log: StepLog, *, timeout_s: float, cafile: str | None = None
) -> None:
    """Run the Redis steps against ``config``, recording each in ``log``; stops at the first
    failure (the later steps need the earlier ones)."""
    host = config.host
    log.start("dns")
    addresses = await _resolve(config, log)
    if not addresses:
        return
    log.start("tcp")
    reader_writer = await _connect(config, addresses, log)
    if reader_writer is None:
        return
    _, writer = reader_writer
    try:
        log.start("tls")
        if not config.tls_enabled:
            log.not_checked("not checked: tlsEnabled is false (plain TCP)")
        else:
            try:
                await writer.start_tls(tls_context(cafile), server_hostname=host)
            except ssl.SSLCertVerificationError as exc:
                return log.fail(f"TLS: certificate verify failed ({exc.verify_message})")
            except ssl.SSLError as exc:
                return log.fail(f"TLS: handshake failed ({exc.reason or exc.strerror})")
            except (ConnectionError, EOFError):
                return log.fail("TLS: the server closed the connection during the handshake")
            ssl_object = writer.get_extra_info("ssl_object")
            version = ssl_object.version() if ssl_object is not None else None
            log.ok(f"certificate verified{f', {version}' if version else ''}")
    finally:
        # Dropped, not closed: a graceful close may wait on a peer that never finished the
        # handshake, and the probe has nothing more to say to it.
        writer.transport.abort()
    await _protocol(config, log, timeout_s=timeout_s, cafile=cafile)


async def _resolve(config: RedisConfig, log: StepLog) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            config.host, config.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            log.fail(f"name not found: {shown(config, 'host')}")
        else:
            log.fail(f"DNS: {printable(str(exc.strerror or exc))}")
        return []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if "host" in config.references:
        log.ok(f"{len(addresses)} address(es)")
    else:
        log.ok(", ".join(addresses[:3]) + (" ..." if len(addresses) > 3 else ""))
    return addresses


async def _connect(
    config: RedisConfig, addresses: list[str], log: StepLog
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A TCP connection to the first address that accepts one."""
    errors: list[OSError] = []
    for address in addresses:
        try:
            reader_writer = await asyncio.open_connection(address, config.port)
        except OSError as exc:
            errors.append(exc)
            continue
        log.ok(f"connected to port {config.port}")
        return reader_writer
    if all(isinstance(exc, ConnectionRefusedError) for exc in errors):
        log.fail(f"connection refused (port {config.port})")
    else:
        last = errors[-1]
        log.fail(f"cannot connect: {printable(last.strerror or type(last).__name__)}")
    return None


async def _protocol(
    config: RedisConfig, log: StepLog, *, timeout_s: float, cafile: str | None
) -> None:
    """AUTH, PING, ROLE and INFO server over redis-py; an answer that is not RESP, or not
    text where Redis answers in text, fails the step it came in."""
    client = _client(config, timeout_s=timeout_s, cafile=cafile)
    try:
        await _steps(client, config, log)
    except (InvalidResponse, UnicodeDecodeError) as exc:
        log.fail(not_resp(exc))
    finally:
        await client.aclose()


async def _steps(client: Redis, config: RedisConfig, log: StepLog) -> None:
    """The protocol steps, in order, each after the one before it passed."""
    if not await _auth(client, config, log):
        return
    log.start("ping")
    try:
        await client.ping()
    except (AuthenticationError, ResponseError) as exc:
        return log.fail(_auth_failure(config, exc))
    except RedisError as exc:
        return log.fail(_said(config, exc))
    log.ok("PONG")

    log.start("role")
    try:
        role = await client.execute_command("ROLE")  # type: ignore[no-untyped-call]
    except ResponseError as exc:
        log.not_checked(f"not checked: ROLE refused ({_said(config, exc)})")
    else:
        _role(role, log)
        if log.done["role"].result.value == "failed":
            return

    await _version(client, config, log)


async def _auth(client: Redis, config: RedisConfig, log: StepLog) -> bool:
    """Connect and authenticate; whether that passed."""
    log.start("auth")
    try:
        await client.initialize()
    except (AuthenticationError, ResponseError) as exc:
        log.fail(_auth_failure(config, exc))
        return False
    except RedisError as exc:
        # An answer that is not RESP came over a connection that was made.
        words = _said(config, exc)
        if not isinstance(exc, InvalidResponse):
            words = f"cannot connect: {words}"
        if not config.tls_enabled:
            words += " (tlsEnabled is false: does the port expect TLS?)"
        log.fail(words)
        return False
    if config.username or config.password:
        who = f"user {shown(config, 'username')}" if config.username else "the password"
        log.ok(f"accepted {who}")
    else:
        log.ok("no username or password configured")
    return True


def _client(config: RedisConfig, *, timeout_s: float, cafile: str | None) -> Redis:
    """redis-py's client for one store, as a preflight needs it."""
    return Redis(
        host=config.host,
        port=config.port,
        username=config.username or None,
        password=config.password or None,
        ssl=config.tls_enabled,
        ssl_cert_reqs="required",
        ssl_check_hostname=True,
        ssl_ca_certs=cafile,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        single_connection_client=True,
        # One try: a preflight reports what it met, it does not paper over it.
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        # RESP2, as LaunchDarkly's own Redis clients speak it: no HELLO before AUTH.
        protocol=2,
    )


async def _version(client: Redis, config: RedisConfig, log: StepLog) -> None:
    """The server's version (and mode, when not standalone), from INFO server."""
    log.start("version")
    try:
        info = await client.info("server")
    except ResponseError as exc:
        log.not_checked(f"not checked: INFO refused ({_said(config, exc)})")
        return
    version = info.get("redis_version")
    mode = info.get("redis_mode")
    words = f"Redis {version}" if version else "no redis_version in INFO server"
    log.ok(words + (f" ({mode})" if mode and mode != "standalone" else ""))


def _said(config: RedisConfig, exc: Exception) -> str:
    """What the server or redis-py said, escaped, with the store's secrets redacted; for an
    answer that is not RESP, only that it is not (:func:`not_resp`)."""
    if isinstance(exc, InvalidResponse):
        return not_resp(exc)
    return config.redact(printable(str(exc)))


# The prefix of redis-py's InvalidResponse message, which continues with the repr of the line.
_PROTOCOL_ERROR = "Protocol Error: "


def not_resp(exc: InvalidResponse | UnicodeDecodeError) -> str:
    """An answer that is not RESP (or not text where Redis answers in text), in words that
    quote none of it: only how many bytes the line it failed on held, when that is known."""
    size: int | None = None
    if isinstance(exc, UnicodeDecodeError):
        size = len(exc.object)
    else:
        text = str(exc)
        if text.startswith(_PROTOCOL_ERROR):
            # redis-py writes the line's repr; read back, it is bytes, and only counted.
            try:
                line = ast.literal_eval(text.removeprefix(_PROTOCOL_ERROR))
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                line = None
            size = len(line) if isinstance(line, bytes) else None
    count = "bytes" if size is None else f"{size} byte{'' if size == 1 else 's'}"
    return f"not a Redis server: it answered with {count} that are not RESP"


def _auth_failure(config: RedisConfig, exc: RedisError) -> str:
    """An error answer to AUTH, or to a command sent without it, in words."""
    text = str(exc)
    if text.startswith("WRONGPASS") or "invalid username-password" in text:
        who = "username and password" if config.username else "password"
        return f"WRONGPASS: the server refused the {who}"
    # NOAUTH (RESP2: "Authentication required."), or a HELLO refused before AUTH (RESP3).
    if "NOAUTH" in text or "uthentication required" in text or "already authenticated" in text:
        return "NOAUTH: the server requires a password and the store gives none"
    return config.redact(printable(text))


def _role(role: Any, log: StepLog) -> None:
    kind = str(role[0]) if isinstance(role, list | tuple) and role else ""
    if kind == "master":
        log.ok("primary (writable)")
    elif kind == "slave":
        log.fail("read-only replica: LaunchDarkly writes to the store, so it needs the primary")
    elif kind == "sentinel":
        log.fail("a Sentinel, not a data server: give the primary's address")
    else:
        log.not_checked(f"not checked: unknown ROLE answer {printable(kind)!r}")
