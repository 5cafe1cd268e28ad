"""Issue 12: deploy/nginx/crm-caldav.conf in a real nginx, in front of `crm-caldav serve --workers 2`
on PostgreSQL, with a certificate from a test CA; python-caldav syncs through it over HTTPS.

The site file is installed the Debian way: a main nginx.conf shaped like Debian's (`http {
include mime.types; gzip on; include sites-enabled/*; }`, so the site must switch gzip off
itself), the site in sites-available and a symlink in sites-enabled, all under a temporary
prefix with its own pid, log and temp paths. The test changes only what a test machine
must: the listen addresses (free ports on 127.0.0.1 instead of 80 and 443; the IPv6 lines
are dropped), the certificate paths and the upstream port; each of these substitutions must
match exactly once, every other line is the file's.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import caldav
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import dav
from tests.conftest import POSTGRES_URL, Crm, _postgres_database
from tests.factories import ALICE, activity, soon, user, vevent

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
SITE = Path(__file__).parents[1] / "deploy" / "nginx" / "crm-caldav.conf"
NGINX = "/usr/sbin/nginx"
POLL = dav.body("04a-propfind-calendar-ctag.xml")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, what: str, seconds: float = 30):
    """Poll ``condition`` until it returns a true value; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost: (ca, chain, key) PEM files."""
    now = dt.datetime.now(dt.UTC)

    def build(subject: str, key, issuer: x509.Name, issuer_key, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crm-caldav test CA")])
    ca_cert = build("crm-caldav test CA", ca_key, ca_name, ca_key, ca=True)
    server_cert = build("127.0.0.1", server_key, ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "fullchain.pem", directory / "privkey.pem"
    paths[0].write_bytes(ca_cert.public_bytes(pem))
    paths[1].write_bytes(server_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    paths[2].write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths


def site_for_test(http_port: int, https_port: int, upstream_port: int, chain: Path, key: Path) -> str:
    """The site file with only the machine-specific values changed (each must occur exactly once)."""
    text = SITE.read_text()
    substitutions = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:80;\n": "",
        "listen [::]:443 ssl http2;\n": "",
        "/etc/letsencrypt/live/caldav.example.com/fullchain.pem": str(chain),
        "/etc/letsencrypt/live/caldav.example.com/privkey.pem": str(key),
        "server 127.0.0.1:5232;": f"server 127.0.0.1:{upstream_port};",
    }
    for old, new in substitutions.items():
        assert text.count(old) == 1, f"the site file no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


MAIN_CONF = """\
# Shaped like Debian's /etc/nginx/nginx.conf, with paths of its own.
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    sendfile on;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    # Debian ships gzip on (its gzip_types lines commented out); an operator who enabled them
    # compresses every type: the site must switch gzip off for itself.
    gzip on;
    gzip_types *;
    gzip_min_length 1;
    include {prefix}/conf.d/*.conf;
    include {prefix}/sites-enabled/*;
}}
"""


@dataclass
class Deployment:
    """The server behind nginx: its URLs, the CA that signed nginx's certificate, the CRM."""

    https: str
    http: str
    direct: str
    ca: Path
    crm: Crm
    password: str
    prefix: Path

    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def start_nginx(prefix: Path) -> subprocess.Popen:
    conf = prefix / "nginx.conf"
    test = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                          capture_output=True, text=True, timeout=30)
    assert test.returncode == 0 and "test is successful" in test.stderr, test.stderr
    assert "[warn]" not in test.stderr and "[emerg]" not in test.stderr, test.stderr
    return subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One deployment for the module's tests (starting it takes a few seconds): Alice is enabled."""
    tmp_path = tmp_path_factory.mktemp("deploy-nginx")
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (Debian package nginx; .ci/run installs it)")
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (CRM_CALDAV_TEST_DATABASE_URL)")
    with contextmanager(_postgres_database)() as database_url:
        yield from _deploy(tmp_path, Crm(database_url))


def _deploy(tmp_path: Path, crm: Crm) -> Iterator[Deployment]:
    crm.load({"users": [user(ALICE)], "activities": [activity(f"A{i}", ALICE, soon(1 + i)) for i in range(3)]})
    password = crm.enable(ALICE)
    server_port, http_port, https_port = free_port(), free_port(), free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("crm-caldav")), "serve", "--port", str(server_port), "--workers", "2"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"CRM_CALDAV_DB": crm.database_url, "PATH": str(Path(sys.executable).parent)})
    prefix = tmp_path / "nginx"
    for folder in ("conf.d", "sites-available", "sites-enabled", "tmp"):
        (prefix / folder).mkdir(parents=True)
    ca, chain, key = make_certificates(prefix)
    site = prefix / "sites-available" / "crm-caldav"
    site.write_text(site_for_test(http_port, https_port, server_port, chain, key))
    (prefix / "sites-enabled" / "crm-caldav").symlink_to(site)
    # As root the workers would run as nobody, who cannot enter pytest's private (0700) tmp folders.
    as_root = "user root root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(MAIN_CONF.format(prefix=prefix, user=as_root))
    nginx = start_nginx(prefix)
    direct = f"http://127.0.0.1:{server_port}"
    try:
        # The socket is bound before the workers build their app: wait for an answer, not a connection.
        wait_for(lambda: _alive(server) and _answers(direct, password), "crm-caldav serve answering", 60)
        wait_for(lambda: _alive(nginx) and accepts(http_port) and accepts(https_port), "nginx accepting connections")
        yield Deployment(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", direct, ca, crm,
                         password, prefix)
    finally:
        stop(nginx)
        workers = children(server.pid)
        stop(server)
        for pid in workers:  # the supervisor stops its workers; this only cleans up after a failure
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(process: subprocess.Popen) -> bool:
    assert process.poll() is None, f"{process.args[0]} exited with {process.returncode}"
    return True


def _answers(url: str, password: str) -> bool:
    try:
        return httpx.request("PROPFIND", f"{url}/{ALICE}/crm/", content=POLL, auth=(ALICE, password),
                             headers={"Depth": "0"}, timeout=5).status_code == 207
    except httpx.TransportError:
        return False


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        with suppress(OSError, ValueError):
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_python_caldav_syncs_through_nginx_over_https_verified_against_the_test_ca(deployment):
    password = deployment.password
    client = caldav.DAVClient(url=deployment.https + "/", username=ALICE, password=password,
                              ssl_verify_cert=str(deployment.ca))
    calendar = client.principal().calendars()[0]
    assert str(calendar.url).startswith(deployment.https + "/") and str(calendar.url).endswith(f"/{ALICE}/crm/")
    synced = calendar.objects_by_sync_token(load_objects=True)
    assert len(list(synced)) == 3
    calendar.save_event(vevent("THROUGH-NGINX-1", summary="Booked over HTTPS"))
    changed = calendar.objects_by_sync_token(sync_token=synced.sync_token, load_objects=True)
    assert [o.icalendar_component["UID"] for o in changed] == ["THROUGH-NGINX-1"]
    created = [a for a in deployment.crm.export(ALICE)["activities"] if a["uid"] == "THROUGH-NGINX-1"]
    assert created and created[0]["title"] == "Booked over HTTPS"


def test_a_certificate_from_another_ca_is_refused_so_verification_is_real(deployment, tmp_path):
    other_ca, _, _ = make_certificates(tmp_path)
    with pytest.raises(httpx.ConnectError):
        httpx.get(deployment.https + "/", verify=ssl.create_default_context(cafile=str(other_ca)), timeout=10)


def test_plain_http_is_redirected_to_https_with_the_path_kept(deployment):
    answer = httpx.get(deployment.http + f"/{ALICE}/crm/?x=1", timeout=10)
    assert answer.status_code == 301
    assert answer.headers["location"] == f"https://127.0.0.1/{ALICE}/crm/?x=1"


def test_well_known_caldav_leads_to_the_root_where_the_principal_is_found(deployment):
    password = deployment.password
    with httpx.Client(base_url=deployment.https, verify=deployment.verify(), auth=(ALICE, password),
                      timeout=30) as client:
        answer = client.request("PROPFIND", "/.well-known/caldav", headers={"Depth": "0"})
        assert answer.status_code == 301 and answer.headers["location"] == deployment.https + "/"
        body = ('<propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>')
        found = client.request("PROPFIND", answer.headers["location"], content=body, headers={"Depth": "0"})
        assert found.status_code == 207 and f"/{ALICE}/" in unquote(found.text)
        assert client.get("/.well-known/carddav").status_code == 404


def test_etag_and_body_are_the_servers_through_nginx_even_when_gzip_is_accepted(deployment):
    password = deployment.password
    href = f"/{ALICE}/crm/THROUGH-NGINX-2.ics"
    with httpx.Client(base_url=deployment.https, verify=deployment.verify(), auth=(ALICE, password),
                      timeout=30) as proxied, \
            httpx.Client(base_url=deployment.direct, auth=(ALICE, password), timeout=30) as direct:
        put = proxied.put(href, content=vevent("THROUGH-NGINX-2", summary="ETag check"),
                          headers={"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"})
        assert put.status_code == 201 and put.headers["etag"].startswith('"')
        via_nginx = proxied.get(href, headers={"Accept-Encoding": "gzip"})
        from_server = direct.get(href, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in via_nginx.headers
        assert via_nginx.headers["etag"] == from_server.headers["etag"] == put.headers["etag"]
        assert via_nginx.content == from_server.content
        polls = [c.request("PROPFIND", f"/{ALICE}/crm/", content=POLL, headers={"Depth": "0"})
                 for c in (proxied, direct)]
        assert [p.status_code for p in polls] == [207, 207] and polls[0].content == polls[1].content
        # The next conditional write with the ETag seen through nginx succeeds (no weakened W/ ETag).
        again = proxied.put(href, content=vevent("THROUGH-NGINX-2", summary="ETag check 2"),
                            headers={"Content-Type": "text/calendar; charset=utf-8",
                                     "If-Match": via_nginx.headers["etag"]})
        assert again.status_code == 204


def test_the_server_sees_the_clients_address_through_x_forwarded_for(deployment):
    """The client connects to nginx from 127.0.0.2 (any 127/8 address is local on Linux) while
    nginx connects to the server from 127.0.0.1: the new device's entry in the device list
    shows 127.0.0.2, and a forged X-Forwarded-For from the client is not believed."""
    added = json.loads(deployment.crm.run("caldav", "password", "add", ALICE, "--label", "proxy-check",
                                          "--json").stdout)
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=deployment.verify())
    with httpx.Client(base_url=deployment.https, transport=transport, auth=(ALICE, added["password"]),
                      timeout=30) as phone:
        answer = phone.request("PROPFIND", f"/{ALICE}/crm/", content=POLL,
                               headers={"Depth": "0", "X-Forwarded-For": "198.51.100.9"})
        assert answer.status_code == 207

    def last_address() -> str | None:
        devices = json.loads(deployment.crm.run("caldav", "password", "list", ALICE, "--json").stdout)
        return next(d["last_address"] for d in devices if d["label"] == "proxy-check")

    assert wait_for(last_address, "the device's last address recorded") == "127.0.0.2"
    assert "127.0.0.2 - " in (deployment.prefix / "access.log").read_text()


def test_health_is_public_and_metrics_only_for_the_allowed_monitoring_address(deployment):
    """/metrics is allowed from 127.0.0.1 only; a client from 127.0.0.2 gets nginx's 403."""
    with httpx.Client(base_url=deployment.https, verify=deployment.verify(), timeout=30) as local, \
            httpx.Client(base_url=deployment.https, timeout=30,
                         transport=httpx.HTTPTransport(local_address="127.0.0.2", verify=deployment.verify())) as other:
        assert other.get("/health").status_code == 200
        assert other.get("/metrics").status_code == 403
        metrics = local.get("/metrics")
        assert metrics.status_code == 200 and "# TYPE" in metrics.text
    assert " /health " not in (deployment.prefix / "access.log").read_text()


def test_bodies_over_the_event_limit_get_the_servers_413_and_only_larger_ones_nginxs(deployment):
    """An event over CRM_CALDAV_MAX_EVENT_BYTES (1 MiB) reaches the server, which names its limit;
    a body over 4 MiB (client_max_body_size, the server's own body limit) is refused by nginx."""
    href = f"/{ALICE}/crm/TOO-BIG.ics"
    event = vevent("TOO-BIG", summary="big")
    padding = "X-PADDING:" + "x" * 60 + "\r\n"

    def put(size: int) -> httpx.Response:
        body = event.replace("END:VEVENT", padding * (size // len(padding)) + "END:VEVENT")
        with httpx.Client(base_url=deployment.https, verify=deployment.verify(),
                          auth=(ALICE, deployment.password), timeout=60) as client:
            return client.put(href, content=body, headers={"Content-Type": "text/calendar; charset=utf-8"})

    over_event_limit = put(2 * 1024 * 1024)
    assert over_event_limit.status_code == 413 and "1048576" in over_event_limit.text
    over_body_limit = put(5 * 1024 * 1024)
    assert over_body_limit.status_code == 413 and "nginx" in over_body_limit.text
