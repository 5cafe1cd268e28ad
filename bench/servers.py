"""Start, load and stop the three servers. Each runs as a subprocess in its own
process group on a free loopback port; `stop()` is always called from a finally."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

import datagen

BIN = Path(sys.executable).parent      # the venv's bin: crm-caldav, git hooks etc.
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """pid and all its descendants (workers of a pre-forking server)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def peak_rss_mib(pid: int) -> float:
    """Sum of VmHWM (peak resident set) over the process tree, in MiB."""
    total_kib = 0
    for p in _descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kib += int(line.split()[1])
        except OSError:
            pass
    return total_kib / 1024


def reset_peak_rss(pid: int) -> None:
    """Start a new VmHWM measurement for the process tree (Linux: clear_refs 5),
    so that a later peak_rss_mib() is the peak of what ran in between."""
    for p in _descendants(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            pass


class Server:
    """Common life cycle: load(ds) writes the data, start() runs it, stop() kills it."""
    name = "?"
    user = datagen.BENCH_USER
    password = datagen.BENCH_PASSWORD
    home = cal = "/"
    send_auth = True
    notes: list[str]

    def __init__(self, workdir: Path):
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "server.log"
        self.notes = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self):
        return (self.user, self.password) if self.send_auth else None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict:
        return dict(os.environ)

    def start(self, timeout: float = 120):
        self.port = free_port()
        with open(self.log, "ab") as log:
            # Own session = own process group, so stop() also reaches forked workers.
            self.proc = subprocess.Popen(self.command(), cwd=self.dir, env=self.env(),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                httpx.request("OPTIONS", self.base_url + "/", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} not listening after {timeout}s:\n{self.log_tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.proc = None

    def rss_mib(self) -> float | None:
        return peak_rss_mib(self.proc.pid) if self.proc else None

    def reset_rss_peak(self) -> None:
        if self.proc:
            reset_peak_rss(self.proc.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def run(self, args: list[str], stdin: str | None = None) -> str:
        r = subprocess.run(args, cwd=self.dir, env=self.env(), input=stdin, text=True,
                           capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} -> exit {r.returncode}\n{r.stderr[-3000:]}")
        return r.stdout


class Ours(Server):
    """crm-caldav: CRM JSON imported through the CLI, served from SQLite or PostgreSQL."""
    name = "ours"
    home = f"/{datagen.BENCH_USER}/"
    cal = f"/{datagen.BENCH_USER}/crm/"

    def __init__(self, workdir: Path, db_url: str | None = None, label: str = "ours",
                 chunk: int = 25000):
        self.name = label
        super().__init__(workdir)
        self.db_url = db_url or f"sqlite:///{self.dir}/crm.db"
        self.chunk = chunk
        self.workers: int | None = None
        self.extra_env: dict[str, str] = {}  # settings for the next start()
        self.exe = str(BIN / "crm-caldav") if (BIN / "crm-caldav").exists() else "crm-caldav"

    def env(self) -> dict:
        return {**os.environ, "CRM_CALDAV_DB": self.db_url, **self.extra_env}

    def supports_workers(self) -> bool:
        return "--workers" in self.run([self.exe, "serve", "--help"])

    def command(self) -> list[str]:
        cmd = [self.exe, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        return cmd + (["--workers", str(self.workers)] if self.workers else [])

    def _import(self, doc: dict, name: str):
        path = self.dir / name
        path.write_text(json.dumps(doc, ensure_ascii=False))
        self.run([self.exe, "import", str(path)])
        path.unlink()

    def load(self, ds: datagen.Dataset) -> float:
        t0 = time.perf_counter()
        # Users first, then enable CalDAV, then the activities: activities created after
        # the enable are always offered, so the 2000 initial-window cap does not apply.
        self._import(datagen.crm_users(), "users.json")
        out = self.run([self.exe, "caldav", "enable", self.user, "--password-stdin", "--json"],
                       stdin=self.password)
        info = json.loads(out)
        if info.get("login") not in (None, self.user):
            self.notes.append(f"enable returned login {info.get('login')!r}")
        for i, doc in enumerate(datagen.crm_activity_chunks(ds, self.chunk)):
            self._import(doc, f"activities-{i}.json")
        return time.perf_counter() - t0


class Radicale(Server):
    """Stock Radicale 3.9, multifilesystem storage, htpasswd (plain) Basic auth."""
    name = "radicale"
    user = "bench"
    home = "/bench/"
    cal = "/bench/calendar/"

    def command(self) -> list[str]:
        return [PY, "-m", "radicale", "--config", "",
                "--server-hosts", f"127.0.0.1:{self.port}",
                "--storage-filesystem-folder", str(self.dir / "store"),
                "--auth-type", "htpasswd",
                "--auth-htpasswd-filename", str(self.dir / "users"),
                "--auth-htpasswd-encryption", "plain",
                "--rights-type", "owner_only",
                "--logging-level", "warning"]

    def load(self, ds: datagen.Dataset) -> float:
        t0 = time.perf_counter()
        (self.dir / "users").write_text(f"{self.user}:{self.password}\n")
        col = self.dir / "store" / "collection-root" / "bench" / "calendar"
        col.mkdir(parents=True)
        (col / ".Radicale.props").write_text(json.dumps({"tag": "VCALENDAR"}))
        for href, ics in datagen.peer_files(ds):
            (col / href).write_bytes(ics)
        return time.perf_counter() - t0


class Xandikos(Server):
    """Stock Xandikos 0.4.10: one git repository per collection, no auth (its Basic auth
    requires TLS), so it skips the password check the other two do."""
    name = "xandikos"
    home = "/user/calendars/"
    cal = "/user/calendars/calendar/"
    send_auth = False

    def command(self) -> list[str]:
        # --index-threshold 0: Xandikos builds its calendar-query index only after a filter
        # was seen 5 times; with 0 the warm-up run builds it, so the timed reps show its
        # steady state instead of a mix of scans and index hits.
        return [PY, "-m", "xandikos.web", "--defaults", "-d", str(self.dir / "store"),
                "-l", "127.0.0.1", "-p", str(self.port), "--index-threshold", "0"]

    def load(self, ds: datagen.Dataset) -> float:
        from xandikos.web import SingleUserFilesystemBackend
        t0 = time.perf_counter()
        store = self.dir / "store"
        store.mkdir()
        # What `--defaults` does on first start: principal /user/ with calendars/calendar.
        SingleUserFilesystemBackend(str(store)).create_principal("/user/", create_defaults=True)
        col = store / "user" / "calendars" / "calendar"
        for href, ics in datagen.peer_files(ds):
            (col / href).write_bytes(ics)
        # One commit for all events: a PUT per event would be one commit each.
        git_env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
                   "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
        for args in (["add", "-A", "."], ["commit", "-q", "-m", "bench load"]):
            subprocess.run(["git", *args], cwd=col, env=git_env, check=True, capture_output=True)
        return time.perf_counter() - t0


def remove_tree(path: Path):
    shutil.rmtree(path, ignore_errors=True)
