"""Real stores on loopback for the ``check`` tests: redis-server processes and a moto server.

``redis_servers`` starts two redis-server processes: a primary with a password, an ACL user and
a TLS port (certificates from trustme), and a replica of it. ``moto_endpoint`` runs moto's
server mode in a thread, a real HTTP endpoint for DynamoDB, STS and IAM.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs
import trustme

REDIS_SERVER = shutil.which("redis-server")
SKIP_REASON = "redis-server is not installed (make test installs it: apt-get install redis-server)"

PASSWORD = "primary-pw-41d7c2"
ACL_USER = "ldbulk"
ACL_PASSWORD = "acl-pw-9be310"


def free_port() -> int:
    """A loopback port nobody listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.frozen
class RedisServers:
    """Where the test redis-servers listen, and the CA files to verify (or fail) TLS with."""

    primary_port: int
    tls_port: int
    replica_port: int
    ca_file: Path
    other_ca_file: Path


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen on {port}: {log.read_text()[-2000:]}")


def _start(directory: Path, name: str, port: int, *args: str) -> subprocess.Popen[bytes]:
    assert REDIS_SERVER is not None
    work = directory / name
    work.mkdir()
    log = work / "redis.log"
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(work),
            "--logfile", str(log),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process


@contextlib.contextmanager
def redis_servers(directory: Path) -> Iterator[RedisServers]:
    """A primary (password, ACL user, plain and TLS ports) and a replica of it."""
    ca, other_ca = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "cert.pem": cert.cert_chain_pems[0],
        "key.pem": cert.private_key_pem,
        "ca.pem": ca.cert_pem,
        "other-ca.pem": other_ca.cert_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(directory / name))
    servers = RedisServers(
        primary_port=free_port(),
        tls_port=free_port(),
        replica_port=free_port(),
        ca_file=directory / "ca.pem",
        other_ca_file=directory / "other-ca.pem",
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        primary = _start(
            directory, "primary", servers.primary_port,
            "--requirepass", PASSWORD,
            "--user", ACL_USER, "on", f">{ACL_PASSWORD}", "~*", "&*", "+@all",
            "--tls-port", str(servers.tls_port),
            "--tls-cert-file", str(directory / "cert.pem"),
            "--tls-key-file", str(directory / "key.pem"),
            "--tls-ca-cert-file", str(directory / "ca.pem"),
            "--tls-auth-clients", "no",
        )
        processes.append(primary)
        replica = _start(
            directory, "replica", servers.replica_port,
            "--replicaof", "127.0.0.1", str(servers.primary_port),
            "--masterauth", PASSWORD,
        )
        processes.append(replica)
        _wait_for(servers.primary_port, primary, directory / "primary" / "redis.log")
        _wait_for(servers.replica_port, replica, directory / "replica" / "redis.log")
        yield servers
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on a loopback port: a real HTTP endpoint for DynamoDB, STS, IAM."""
    from moto.server import ThreadedMotoServer

    # The server's access log is noise in a test's output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's state lives in the process: start from none, whatever another module left.
    urllib.request.urlopen(
        urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=10
    ).close()
    try:
        yield url
    finally:
        server.stop()
