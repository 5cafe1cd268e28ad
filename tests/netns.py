"""Server hosts in Linux network namespaces behind a real nginx, for the two-host test
(tests/test_two_hosts.py) and its longer bench run (bench/two_hosts.py).

Each host is a network namespace (``ip netns add``) joined to the root namespace by a
veth pair on a /30 of its own: the root side holds ``.1`` (nginx's address as the host
sees it), the namespace side ``.2`` (where ``crm-caldav serve`` listens). Nothing in
the namespace is reachable from outside the machine: the addresses live on veth links
only, and nginx listens on 127.0.0.1.

PostgreSQL: the shared server listens on 127.0.0.1 only (``listen_addresses``), which a
namespace cannot reach: its loopback is its own. Changing the machine's PostgreSQL
configuration from a test is not acceptable, and a TCP relay in the test process would
put our own code (and the test's GIL) on every query path. A network namespace
isolates the network, not the file system, so the servers reach the one PostgreSQL
through its Unix socket (``unix_socket_directories``; pg_hba's ``local`` line), the way
a host on the database machine would. The hosts therefore share exactly one database,
and killing a host closes its sessions as a lost TCP peer would.

Names carry a random token, so a namespace left over by a killed run never clashes with
a later one; ``Network.close`` removes namespaces (and with them the veth pairs) and
kills what runs in them, and is safe to call twice.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

NGINX = "/usr/sbin/nginx"
SERVER_PORT = 5232
T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], seconds: float, what: str) -> T:
    """Poll ``condition`` every 50 ms until it returns something truthy; AssertionError
    naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:g} s")
        time.sleep(0.05)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def _ip(*args: str) -> None:
    """``ip ARGS``; RuntimeError with ip's own message when it fails."""
    result = _run("ip", *args)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def unavailable_reason() -> str | None:
    """Why namespaces and nginx cannot be used here (None when they can): not root,
    no iproute2, no nginx, or ``ip netns add`` refused (a container without CAP_SYS_ADMIN)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if not os.access(NGINX, os.X_OK):
        return f"nginx is not installed ({NGINX})"
    probe = f"crmprobe{secrets.token_hex(3)}"
    made = _run("ip", "netns", "add", probe)
    if made.returncode != 0:
        return f"ip netns add fails here: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe)
    return None


def postgres_socket_url(url: str) -> str:
    """``url`` (a PostgreSQL database on this machine) rewritten to reach the same database
    through the server's Unix socket (see the module docstring); ValueError when that
    socket is not on this machine."""
    parsed = make_url(url)
    with create_engine(parsed).connect() as connection:
        directory = str(connection.execute(text("SHOW unix_socket_directories")).scalar()).split(",")[0].strip()
        port = str(connection.execute(text("SHOW port")).scalar())
    if not Path(directory, f".s.PGSQL.{port}").exists():
        raise ValueError(f"PostgreSQL's socket {directory}/.s.PGSQL.{port} is not on this machine")
    return URL.create(parsed.drivername, username=parsed.username, password=parsed.password,
                      database=parsed.database, query={"host": directory, "port": port}
                      ).render_as_string(hide_password=False)


@dataclass
class Host:
    """One server host: a namespace, its veth pair and the ``crm-caldav serve`` in it."""

    number: int
    namespace: str
    outside: str  # veth end in the root namespace, and its address (what the server sees nginx as)
    outside_address: str
    inside: str
    inside_address: str  # where the server listens, inside the namespace
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def upstream(self) -> str:
        """``address:port`` as nginx names this host in ``$upstream_addr``."""
        return f"{self.inside_address}:{SERVER_PORT}"

    def start(self, database_url: str, workers: int, env: dict[str, str] | None = None) -> None:
        """``crm-caldav serve --workers N`` inside the namespace, in a process group of its
        own (so a SIGKILL of the group takes the supervisor and every worker at once)."""
        command = ["ip", "netns", "exec", self.namespace, str(Path(sys.executable).with_name("crm-caldav")),
                   "serve", "--host", self.inside_address, "--port", str(SERVER_PORT), "--workers", str(workers)]
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CRM_CALDAV_DB": database_url,
                       # nginx reaches this host from the root end of the veth pair
                       "CRM_CALDAV_TRUSTED_PROXY": self.outside_address, **(env or {})}
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, env=environment, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_serving(self, login: str, password: str, path: str, body: str, seconds: float = 30) -> None:
        """Poll the host directly (not through nginx) until an authenticated PROPFIND answers 207."""

        def serving() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"host {self.number} exited: {self.log_path.read_text()[-2000:]}")
            try:
                response = httpx.request("PROPFIND", f"http://{self.upstream}{path}", content=body,
                                         headers={"Depth": "0", "Content-Type": "text/xml"},
                                         auth=(login, password), timeout=5)
            except httpx.HTTPError:
                return False
            return response.status_code == 207

        wait_for(serving, seconds, f"host {self.number} serving")

    def kill(self) -> None:
        """SIGKILL the server's whole process group: the supervisor and its workers die at
        once, mid-request, without closing anything (a host losing power)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        # the workers are in the same group; wait until none is left in the namespace
        wait_for(lambda: not _pids_in(self.namespace), 10, f"host {self.number} processes gone")

    def link(self, up: bool) -> None:
        """Take the root end of the host's veth pair down (or up again): the host keeps
        running, with its database sessions, but nothing reaches it and its answers are lost
        (a network partition rather than a crash)."""
        _ip("link", "set", self.outside, "up" if up else "down")

    def stop(self) -> None:
        """SIGTERM (the supervisor stops its workers), SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def _pids_in(namespace: str) -> list[str]:
    return _run("ip", "netns", "pids", namespace).stdout.split()


@dataclass
class Network:
    """``count`` namespaces with a veth pair each, on /30s of a 10.x.y.0/24 unused here."""

    directory: Path
    count: int = 2
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: list[Host] = field(default_factory=list)
    subnet: ipaddress.IPv4Network | None = None

    def open(self) -> Network:
        """Create the namespaces and links; on any failure, remove what was made and raise."""
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        self.subnet = subnet = _free_subnet()
        # Without this, a host whose link is down (Host.link) would be routed through the
        # default gateway: requests with the test's credentials would leave the machine. The
        # /30s of the veth links are more specific, so they win while their links are up.
        _ip("route", "add", "blackhole", str(subnet))
        for number in range(self.count):
            base = subnet.network_address + 4 * number
            host = Host(number, namespace=f"crm2h-{self.token}-{number}",
                        outside=f"c{self.token}o{number}", outside_address=str(base + 1),
                        inside=f"c{self.token}i{number}", inside_address=str(base + 2),
                        log_path=self.directory / f"host{number}.log")
            self.hosts.append(host)  # before creating it: close() cleans up what exists
            _ip("netns", "add", host.namespace)
            _ip("link", "add", host.outside, "type", "veth", "peer", "name", host.inside)
            _ip("link", "set", host.inside, "netns", host.namespace)
            _ip("addr", "add", f"{host.outside_address}/30", "dev", host.outside)
            _ip("link", "set", host.outside, "up")
            _ip("-n", host.namespace, "addr", "add", f"{host.inside_address}/30", "dev", host.inside)
            _ip("-n", host.namespace, "link", "set", host.inside, "up")
            _ip("-n", host.namespace, "link", "set", "lo", "up")

    def close(self) -> None:
        """Stop every server, then delete the namespaces (which deletes their veth pairs)."""
        for host in self.hosts:
            try:
                host.kill()
            except (OSError, AssertionError, subprocess.TimeoutExpired):
                pass
            for pid in _pids_in(host.namespace):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            _run("ip", "netns", "del", host.namespace)
            _run("ip", "link", "del", host.outside)  # normally gone with the namespace
        if self.subnet is not None:
            _run("ip", "route", "del", "blackhole", str(self.subnet))
            self.subnet = None

    def __enter__(self) -> Network:
        return self.open()

    def __exit__(self, *_: Any) -> None:
        self.close()


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no address or route of the root namespace touches."""
    used = [ipaddress.ip_network(word, strict=False) for line in
            (_run("ip", "-o", "-4", "addr").stdout + _run("ip", "-4", "route").stdout).splitlines()
            for word in line.split() if "/" in word and word[0].isdigit()]
    for _ in range(100):
        candidate = ipaddress.IPv4Network(f"10.{secrets.randbelow(200) + 50}.{secrets.randbelow(256)}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise RuntimeError("no free 10.x.y.0/24 for the test hosts")


NGINX_CONF = """\
# Written by tests/netns.py: one nginx balancing between the test's server hosts.
user {user};
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # who answered: $upstream_addr lists every host tried, in order
    log_format hosts '$msec|$request_method|$status|$upstream_addr|$upstream_status|$request_time|$uri';
    access_log {dir}/access.log hosts;
    upstream crm_caldav {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://crm_caldav;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            client_max_body_size 4m;
            gzip off;
            proxy_buffering off;
            # A host that refuses or drops the connection, or stays silent, is skipped and
            # the request sent to the next one. nginx retries only what it counts as
            # idempotent (never POST, LOCK, PATCH); PUT and DELETE are retried, which is safe
            # for CalDAV clients' conditional writes: a write that the dead host had already
            # committed answers 412 on the next host instead of being applied twice.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 1s;
            proxy_read_timeout {read_timeout}s;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    """nginx in the foreground with its own prefix, config, pid, logs and temp paths in
    ``directory``, listening on a free 127.0.0.1 port."""

    directory: Path
    hosts: list[Host]
    fail_timeout: float = 2.0  # a failed host is left out this long, then tried again
    read_timeout: float = 30.0  # an answer silent this long fails the host (and the request is retried)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        servers = "\n".join(f"        server {host.upstream} max_fails=1 fail_timeout={self.fail_timeout:g}s;"
                            for host in self.hosts)
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        config = self.directory / "nginx.conf"
        config.write_text(NGINX_CONF.format(user=user, dir=self.directory, servers=servers, port=self.port,
                                              read_timeout=f"{self.read_timeout:g}"))
        # -e: the error log before the config is read (else /var/log/nginx/error.log)
        error_log = self.directory / "error.log"
        with error_log.open("ab") as output:
            self.process = subprocess.Popen([NGINX, "-p", str(self.directory), "-e", str(error_log), "-c", str(config)],
                                            stdout=output, stderr=output, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"nginx exited: {error_log.read_text()[-2000:]}")
            with socket.socket() as client:
                return client.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 10, "nginx listening")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: the master waits for its worker
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def entries(self) -> list[LogEntry]:
        """The access log so far, one LogEntry per request."""
        if not self.access_log.exists():
            return []
        return [entry for line in self.access_log.read_text().splitlines() if (entry := LogEntry.parse(line))]


@dataclass(frozen=True)
class LogEntry:
    """One line of nginx's access log (format ``hosts`` above). ``upstreams``: every host
    tried, in order, with the status each gave (502 for one that failed)."""

    time: float  # Unix seconds
    method: str
    status: int
    upstreams: tuple[str, ...]
    upstream_statuses: tuple[str, ...]
    seconds: float
    uri: str

    @classmethod
    def parse(cls, line: str) -> LogEntry | None:
        fields = line.split("|")
        if len(fields) != 7:
            return None
        stamp, method, status, addrs, statuses, seconds, uri = fields

        def split(text: str) -> tuple[str, ...]:  # "a, b" (next host) or "a : b" (internal redirect)
            return tuple(part.strip() for part in text.replace(" : ", ", ").split(",") if part.strip() not in ("", "-"))

        return cls(float(stamp), method, int(status), split(addrs), split(statuses), float(seconds), uri)

    @property
    def served_by(self) -> str | None:
        """The host that gave the answer (the last one tried), None when nginx answered itself."""
        return self.upstreams[-1] if self.upstreams else None
