"""Issue 12: the production steps of deploy/README.md run as written, on PostgreSQL, in a fresh
venv with the `[production]` extra, and the service they set up answers CalDAV.

What "as written" means here: the README's ```sh blocks of "Install on Debian" are run, in
order, in one `bash -euo pipefail`, from a copy of this checkout (the README says to run
them from the checkout), as root. The test changes none of their lines; it only
- gives its own values to the four settings of the first block (HOST, DB_HOST, DB_NAME,
  DB_USER: a database and role of its own on the test PostgreSQL, dropped afterwards);
- runs them in a private mount namespace where /etc and /opt are overlays on temporary
  folders, so useradd, /etc/crm-caldav, /etc/systemd, /etc/nginx and /opt/crm-caldav are
  real paths for the steps and leave the machine unchanged;
- puts the certificate that certbot would have made (self-signed) at the path the site file
  names, since there is no Internet to ask Let's Encrypt;
- passes PGHOST/PGPORT/PGUSER so that `runuser -u postgres -- psql` reaches the test
  PostgreSQL (on TCP here, where a Debian host would use the local socket);
- stands in for `systemctl`, since no systemd runs as PID 1 here: the stand-in records its
  arguments, and the test then does what `systemctl enable --now crm-caldav` would do with the
  installed unit: runs its ExecStart as its User and Group with the variables of its
  EnvironmentFile and nothing else (only the port changed to a free one), after
  `systemd-analyze verify` of the installed unit with the installed venv.
`nginx -t` is the real one, on Debian's /etc/nginx with the site linked as documented. The
README's two day-to-day commands (import, enable) are run as written too, with a crm.json
the test writes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from tests import dav
from tests.conftest import POSTGRES_URL

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
ROOT = Path(__file__).parents[1]
README = ROOT / "deploy" / "README.md"
UNIT = ROOT / "deploy" / "systemd" / "crm-caldav.service"
SETTINGS = ("HOST", "DB_HOST", "DB_NAME", "DB_USER")
DEBIAN_ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER = "patricia@example.com"
POLL = dav.body("04a-propfind-calendar-ctag.xml")


def install_section() -> str:
    readme = README.read_text()
    start = readme.index("## Install on Debian")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end > 0 else None]


def documented_blocks() -> list[str]:
    """The ```sh blocks of "Install on Debian", in order."""
    return re.findall(r"^```sh\n(.*?)^```$", install_section(), re.S | re.M)


def day_to_day_commands() -> list[str]:
    """The indented example commands that load the CRM and enable a user."""
    return re.findall(r"^    (runuser -u crm-caldav -- .*)$", install_section(), re.M)


def test_the_first_block_sets_exactly_the_settings_the_test_replaces():
    blocks = documented_blocks()
    assert len(blocks) >= 4
    names = [line.split("=", 1)[0] for line in blocks[0].splitlines() if line.strip()]
    assert tuple(names) == SETTINGS
    assert [c.split(" --config /etc/crm-caldav/env ")[1].split()[0:2] for c in day_to_day_commands()] == \
        [["import", "-"], ["caldav", "enable"]]


def _missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "the documented steps run as root (useradd, runuser, mounts)"
    if not POSTGRES_URL:
        return "PostgreSQL not configured (CRM_CALDAV_TEST_DATABASE_URL)"
    for tool in ("unshare", "mount", "runuser", "setpriv", "useradd", "psql", "nginx", "systemd-analyze"):
        if not shutil.which(tool, path=DEBIAN_ROOT_PATH):
            return f"{tool} is not installed (nginx, systemd, postgresql-client and util-linux: see .ci/run)"
    if not Path("/usr/bin/python3").exists():
        return "Debian's /usr/bin/python3 (with python3-venv) is missing"
    with tempfile.TemporaryDirectory() as scratch:
        overlay = (f"mkdir {scratch}/u {scratch}/w && mount -t overlay overlay "
                   f"-o lowerdir=/etc,upperdir={scratch}/u,workdir={scratch}/w /etc")
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", overlay],
                               capture_output=True)
    if probe.returncode:
        return f"no private mount namespace with an overlay on /etc here: {probe.stderr.decode().strip()}"
    if subprocess.run(["id", "postgres"], capture_output=True).returncode:
        return "no postgres system user for `runuser -u postgres -- psql`"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """A database name and role name for the steps to create; both dropped afterwards."""
    if reason := _missing_tools():
        pytest.skip(reason)
    suffix = uuid.uuid4().hex[:10]
    name, role = f"crm_caldav_docs_{suffix}", f"crm_caldav_docs_{suffix}"
    yield name, role
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                           {"n": name})
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def copy_checkout(destination: Path) -> None:
    """This checkout's files (tracked and new, not ignored), as a fresh clone plus local changes would be."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def unit_value(key: str) -> str:
    return next(line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(key + "="))


def make_self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", f"/CN={host}", "-keyout", str(directory / "privkey.pem"),
                    "-out", str(directory / "fullchain.pem")], check=True, capture_output=True)
    return directory / "fullchain.pem", directory / "privkey.pem"


def build_script(work: Path, checkout: Path, settings: dict[str, str], port: int) -> str:
    host = settings["HOST"]
    chain, key = make_self_signed(work, host)
    for folder in ("etc-upper", "etc-work", "opt-upper", "opt-work", "shim"):
        (work / folder).mkdir()
    shim = work / "shim" / "systemctl"
    shim.write_text(f'#!/bin/sh\necho "$*" >> {work}/systemctl.log\n')
    shim.chmod(0o755)
    exec_start = unit_value("ExecStart")
    assert exec_start.count(" --port 5232 ") == 1
    exec_start = exec_start.replace(" --port 5232 ", f" --port {port} ")
    user, group, environment_file = unit_value("User"), unit_value("Group"), unit_value("EnvironmentFile")
    prologue = f"""\
set -euo pipefail
mount -t overlay overlay -o lowerdir=/etc,upperdir={work}/etc-upper,workdir={work}/etc-work /etc
mount -t overlay overlay -o lowerdir=/opt,upperdir={work}/opt-upper,workdir={work}/opt-work /opt
install -D -m 0644 {chain} /etc/letsencrypt/live/{host}/fullchain.pem
install -D -m 0600 {key} /etc/letsencrypt/live/{host}/privkey.pem
export PATH={work}/shim:$PATH
cd {checkout}
# ---- deploy/README.md, "Install on Debian": this test's settings, then every other block as written
"""
    settings_block = "".join(f"{name}={shlex.quote(value)}\n" for name, value in settings.items())
    documented = "\n".join(documented_blocks()[1:])
    epilogue = f"""
# ---- the README's day-to-day commands, as written
{day_to_day_commands()[0]}
{day_to_day_commands()[1]} > {work}/enable.txt
# ---- checks, then what `systemctl enable --now crm-caldav` does with the installed unit
stat -c '%a %U %G' /etc/crm-caldav/env > {work}/env-stat.txt
/opt/crm-caldav/.venv/bin/python -c 'import psycopg'
systemd-analyze verify --man=no /etc/systemd/system/crm-caldav.service > {work}/verify.txt 2>&1 \\
    || echo "exit $?" >> {work}/verify.txt
cd /
exec env -i $(grep -v '^#' {environment_file}) setpriv --reuid={user} --regid={group} --init-groups {exec_start}
"""
    return prologue + settings_block + documented + epilogue


def wait_for(condition, what: str, process: subprocess.Popen, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what}: the steps failed (exit {process.returncode}); see the output above"
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")


def test_documented_production_steps_run_as_written_and_the_service_answers(database, tmp_path):
    db_name, db_user = database
    admin = make_url(POSTGRES_URL)
    work, checkout = tmp_path / "work", tmp_path / "checkout"
    work.mkdir()
    checkout.mkdir()
    copy_checkout(checkout)
    (checkout / "crm.json").write_text(json.dumps({"users": [{"email": USER, "name": "Patricia"}]}))
    settings = {"HOST": "caldav.example.test", "DB_HOST": f"{admin.host}:{admin.port or 5432}",
                "DB_NAME": db_name, "DB_USER": db_user}
    port = free_port()
    host_before = host_state()
    script = work / "steps.sh"
    script.write_text(build_script(work, checkout, settings, port))
    environment = {name: value for name, value in os.environ.items() if name.startswith("PIP_")}
    environment.update(PATH=DEBIAN_ROOT_PATH, HOME=os.environ.get("HOME", "/root"), LANG="C.UTF-8",
                       PGHOST=admin.host or "127.0.0.1", PGPORT=str(admin.port or 5432),
                       PGUSER=admin.username or "postgres")
    output = (tmp_path / "output.txt").open("w")
    process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", str(script)],
                               cwd=checkout, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        password = wait_for(lambda: _password(work), "the documented steps up to `caldav enable`", process, 400)
        assert wait_for(lambda: _answers(port, password), "the service answering", process, 60)
        assert (work / "env-stat.txt").read_text().split() == ["640", "root", "crm-caldav"]
        assert (work / "verify.txt").read_text() == ""
        assert (work / "systemctl.log").read_text().splitlines() == [
            "daemon-reload", "enable --now crm-caldav", "reload nginx"]
        assert "server: https://caldav.example.test/\n" in (work / "enable.txt").read_text()
        installed = work / "etc-upper"
        assert (installed / "systemd" / "system" / "crm-caldav.service").read_text() == UNIT.read_text()
        site = (installed / "nginx" / "sites-available" / "crm-caldav").read_text()
        assert "server_name caldav.example.test;" in site and "example.com" not in site
        assert os.readlink(installed / "nginx" / "sites-enabled" / "crm-caldav") == \
            "/etc/nginx/sites-available/crm-caldav"
        assert "test is successful" in (tmp_path / "output.txt").read_text()
        process.terminate()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()
        print((tmp_path / "output.txt").read_text()[-5000:])
    assert host_state() == host_before
    schema = URL.create("postgresql", username=admin.username, host=admin.host, port=admin.port, database=db_name)
    engine = create_engine(schema)
    with engine.connect() as connection:
        owner = connection.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'users'")).scalar_one()
        users = connection.execute(text("SELECT email FROM users")).scalars().all()
    engine.dispose()
    assert owner == db_user and users == [USER]


def host_state() -> tuple[bool, ...]:
    """What the steps would change on this machine outside their namespace (it must not change)."""
    has_user = subprocess.run(["getent", "passwd", "crm-caldav"], capture_output=True).returncode == 0
    paths = ("/etc/crm-caldav", "/opt/crm-caldav", "/etc/systemd/system/crm-caldav.service",
             "/etc/nginx/sites-enabled/crm-caldav")
    return (has_user, *(os.path.lexists(path) for path in paths))


def _password(work: Path) -> str | None:
    enable = work / "enable.txt"
    if enable.exists() and (match := re.search(r"^password: (\S+)$", enable.read_text(), re.M)):
        return match.group(1)
    return None


def _answers(port: int, password: str) -> bool:
    try:
        return httpx.request("PROPFIND", f"http://127.0.0.1:{port}/{USER}/crm/", content=POLL, auth=(USER, password),
                             headers={"Depth": "0"}, timeout=5).status_code == 207
    except httpx.TransportError:
        return False
