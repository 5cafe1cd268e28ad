"""The two-host scenario (issue 13, "Two hosts"): two server hosts behind one nginx and one
PostgreSQL, iPhone-like clients syncing and writing through nginx, one host SIGKILLed
mid-traffic and brought back. Run briefly by tests/test_two_hosts.py, longer by
bench/two_hosts.py; the plumbing (namespaces, nginx) is tests/netns.py.

What is checked, and how:

- **No acknowledged write is lost.** Each writer thread owns its events (nobody else
  writes them), so it always knows what each should hold. Every PUT carries
  ``If-None-Match: *`` (create) or ``If-Match`` (edit), every DELETE ``If-Match``, as
  iOS sends them. A 201/204 is an acknowledgement. Any other answer (a 412 from a retry
  nginx made after the dead host had committed, a 502, a dropped connection) leaves the
  outcome open, so the writer reads the event back (GET) until it gets an answer: it must
  hold either the last acknowledged version or the one just attempted, anything else is
  a lost write. A 412 on an event that still holds the version named in If-Match is
  also a fault. At the end ``crm-caldav export`` must hold exactly what each writer
  last knew, and a GET through nginx of every live event must return it.
- **Every sync answer agrees with the export.** Syncer threads poll like an iPhone
  (getctag PROPFIND; when it moved, sync-collection from their token, then multigets of
  what changed, 50 at a time) and keep a mirror of the calendar. During the run each
  answered event must carry a title its writer attempted (no phantom data). After the
  traffic stops, each syncer's last incremental sync, from a token that either host may
  have issued, must leave its mirror equal to the export (href to title), and to a full
  sync (empty token) with its ETags.
- **Clients carry on.** After the kill, acknowledged writes and completed syncs must keep
  coming, through the other host; after the restart, nginx must send requests to the
  revived host again (it retries a failed host after ``fail_timeout``).

Requests served per host come from nginx's access log (``$upstream_addr``), not from a
header added for the test.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import dav
from tests.factories import IOS_REQUESTS, activity, user
from tests.netns import Host, LogEntry, Network, Nginx, postgres_socket_url, wait_for

OWNER = "alice@example.com"
PASSWORD = "two-hosts-pass"
CAL = f"/{OWNER}/crm/"
CRM_CALDAV = str(Path(sys.executable).with_name("crm-caldav"))
IPHONE_PUT = (IOS_REQUESTS / "06-put-event.ics").read_text()
IPHONE_UID = "8F3C2B1A-5D4E-4C6B-9A7F-2E1D0C9B8A76"
ACKNOWLEDGED = {"PUT": {201, 204}, "DELETE": {200, 204}}
EXPECTED = {"PROPFIND": {207}, "REPORT": {207}, "GET": {200, 404}}


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new PostgreSQL database on the server of ``admin_url``, dropped afterwards (as
    tests/conftest.py makes one per test)."""
    admin = create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"crm_caldav_two_hosts_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                               {"n": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def crm_cli(database_url: str, *args: str, stdin: str | None = None) -> str:
    """The real ``crm-caldav`` command; its stdout. AssertionError with its stderr on failure."""
    result = subprocess.run([CRM_CALDAV, *args], input=stdin, capture_output=True, text=True, check=False,
                            env={"PATH": os.environ.get("PATH", ""), "CRM_CALDAV_DB": database_url})
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def seed(database_url: str, events: int) -> None:
    """One user with ``events`` upcoming meetings, CalDAV enabled with PASSWORD."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    activities = [activity(f"SEED-{n}", OWNER, start + timedelta(hours=n), title=f"Seeded meeting {n}")
                  for n in range(events)]
    document = {"users": [user(OWNER, "Alice", "Europe/Berlin")], "activities": activities}
    crm_cli(database_url, "import", "-", stdin=json.dumps(document))
    crm_cli(database_url, "caldav", "enable", OWNER, "--password-stdin", "--json", stdin=PASSWORD + "\n")


def exported(database_url: str) -> dict[str, str]:
    """``crm-caldav export --owner OWNER``: event file name -> title."""
    document = json.loads(crm_cli(database_url, "export", "--owner", OWNER))
    return {activity["href"]: activity["title"] for activity in document["activities"]}


def iphone_event(uid: str, title: str) -> str:
    """The iPhone's recorded PUT body (06-put-event.ics) as another event with another title."""
    return IPHONE_PUT.replace(IPHONE_UID, uid).replace("SUMMARY:Quarterly review", f"SUMMARY:{title}")


def summary_of(calendar_data: str) -> str | None:
    unfolded = re.sub(r"\r?\n[ \t]", "", calendar_data)
    found = re.search(r"^SUMMARY[^:]*:(.*?)\r?$", unfolded, re.M)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Sent:
    """One request a client sent through nginx and what became of it."""

    time: float  # Unix seconds when the answer (or the error) came
    client: str
    method: str
    path: str
    status: int | None  # None: no HTTP answer (connection error or timeout)
    error: str = ""


@dataclass
class Traffic:
    """What every client did; shared by the client threads."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    sent: list[Sent] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # lost writes, phantom data, wrong refusals
    acknowledged: Counter[str] = field(default_factory=Counter)  # create / edit / delete
    syncs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(OWNER, PASSWORD), timeout=30,
                            headers={"User-Agent": dav.IOS_HEADERS["User-Agent"]})

    def send(self, http: httpx.Client, name: str, method: str, path: str, **options: Any) -> httpx.Response | None:
        """One request; recorded whatever happens. None when no HTTP answer came."""
        try:
            response = http.request(method, path, **options)
        except httpx.HTTPError as error:
            self.record(Sent(time.time(), name, method, path, None, type(error).__name__))
            return None
        self.record(Sent(time.time(), name, method, path, response.status_code))
        return response

    def record(self, sent: Sent) -> None:
        with self.lock:
            self.sent.append(sent)

    def acknowledge(self, op: str) -> None:
        with self.lock:
            self.acknowledged[op] += 1

    def fault(self, message: str) -> None:
        with self.lock:
            self.faults.append(message)

    def failures(self) -> list[Sent]:
        """Requests whose answer a client did not expect: no answer, a 5xx, a 412 (an
        nginx retry of a write the dead host had already committed) or any other refusal."""
        return [s for s in self.sent
                if s.status not in ACKNOWLEDGED.get(s.method, set()) | EXPECTED.get(s.method, set())]


class Writer:
    """Creates, edits and deletes its own events with conditional PUT / DELETE (see the
    module docstring for what it checks)."""

    def __init__(self, number: int, traffic: Traffic, events: int = 6) -> None:
        self.name, self.traffic = f"writer{number}", traffic
        self.random = random.Random(number)
        self.state: dict[str, tuple[str, str] | None] = {f"W{number}-{n}": None for n in range(events)}
        self.count = 0

    def run(self) -> None:
        with self.traffic.client() as http:
            while not self.traffic.stop.is_set():
                self.step(http, self.random.choice(sorted(self.state)))

    def step(self, http: httpx.Client, uid: str) -> None:
        """One conditional write of ``uid``, then what its answer proves (module docstring)."""
        known = self.state[uid]
        self.count += 1
        title = f"{uid} v{self.count}"
        op, response = self.attempt(http, uid, known, title)
        attempted = None if op == "delete" else title
        if response is not None and response.status_code in ACKNOWLEDGED["DELETE" if op == "delete" else "PUT"]:
            self.traffic.acknowledge(op)
            etag = response.headers.get("ETag")
            # no ETag: the server stored something other than the bytes sent; fetch its version
            self.state[uid] = None if attempted is None else (title, etag) if etag else self.read(http, uid)
            if attempted is not None and (self.state[uid] or ("", ""))[0] != title:
                self.traffic.fault(f"{uid}: acknowledged {title!r}, read back {self.state[uid]}")
            return
        observed = self.read(http, uid)  # the outcome is open: applied or not
        if (observed and observed[0]) not in {known and known[0], attempted}:
            self.traffic.fault(f"{uid}: after {op} answered {response and response.status_code}, holds {observed} "
                               f"instead of {known} or the attempted {attempted or 'deletion'!r}: a lost write")
        elif response is not None and response.status_code == 412 and observed == known:
            self.traffic.fault(f"{uid}: {op} refused with 412 while it held the version named in the request")
        self.state[uid] = observed

    def attempt(self, http: httpx.Client, uid: str, known: tuple[str, str] | None,
                title: str) -> tuple[str, httpx.Response | None]:
        """Create (``If-None-Match: *``), or delete (one in five) or edit (``If-Match``) as
        the iPhone sends them; the operation's name and the answer (None: no answer)."""
        href = f"{CAL}{uid}.ics"
        if known is None:
            return "create", self.traffic.send(http, self.name, "PUT", href, content=iphone_event(uid, title).encode(),
                                               headers={"Content-Type": "text/calendar", "If-None-Match": "*"})
        if self.random.random() < 0.2:
            return "delete", self.traffic.send(http, self.name, "DELETE", href, headers={"If-Match": known[1]})
        return "edit", self.traffic.send(http, self.name, "PUT", href, content=iphone_event(uid, title).encode(),
                                         headers={"Content-Type": "text/calendar", "If-Match": known[1]})

    def read(self, http: httpx.Client, uid: str) -> tuple[str, str] | None:
        """The event as the server holds it now: (title, ETag), None when absent. Retried
        until an answer comes (through whichever host nginx picks)."""

        def answer() -> httpx.Response | None:
            response = self.traffic.send(http, self.name, "GET", f"{CAL}{uid}.ics")
            return response if response is not None and response.status_code in (200, 404) else None

        response = wait_for(answer, 30, f"{self.name}: GET {uid}")
        if response.status_code == 404:
            return None
        return summary_of(response.text) or "", response.headers["ETag"]


class Syncer:
    """Polls like an iPhone (04a getctag PROPFIND, 04 sync-collection, 05 multiget) and
    keeps a mirror of the calendar: href -> (ETag, title)."""

    def __init__(self, number: int, traffic: Traffic, writers: list[Writer]) -> None:
        self.name, self.traffic = f"syncer{number}", traffic
        self.writers = {uid: writer for writer in writers for uid in writer.state}
        self.mirror: dict[str, tuple[str, str]] = {}
        self.token = ""
        self.ctag: str | None = None

    def run(self) -> None:
        with self.traffic.client() as http:
            while not self.traffic.stop.is_set():
                if self.poll(http):
                    with self.traffic.lock:
                        self.traffic.syncs += 1

    def xml(self, http: httpx.Client, method: str, path: str, body: str, depth: str) -> dav.Multistatus | None:
        headers = {**dav.IOS_HEADERS, "Depth": depth}
        response = self.traffic.send(http, self.name, method, path, content=body.encode(), headers=headers)
        return dav.parse(response) if response is not None and response.status_code == 207 else None

    def poll(self, http: httpx.Client, force: bool = False) -> bool:
        """One poll; True when it completed (the mirror then matches the token it holds)."""
        ctag_answer = self.xml(http, "PROPFIND", CAL, dav.body("04a-propfind-calendar-ctag.xml"), "0")
        if ctag_answer is None:
            return False
        ctag = dav.prop_text(next(iter(ctag_answer.responses.values())), "D:propstat/D:prop/CS:getctag")
        if ctag == self.ctag and not force:
            return True
        changes = self.xml(http, "REPORT", CAL, dav.body("04-sync-collection.xml", SYNC_TOKEN=self.token), "1")
        if changes is None:
            return False
        gone = changes.hrefs(404)
        wanted = [h for h, r in changes.responses.items()
                  if r["status"] == 200 and self.mirror.get(h, ("", ""))[0] != r["etag"]]
        fetched: dict[str, tuple[str, str]] = {}
        for start in range(0, len(wanted), 50):
            batch = [dav.encoded(h) for h in wanted[start:start + 50]]
            answer = self.xml(http, "REPORT", CAL, dav.multiget_body(batch), "1")
            if answer is None:
                return False
            for href, item in answer.responses.items():
                if item["status"] == 200:
                    fetched[href] = (item["etag"], summary_of(item["calendar_data"] or "") or "")
        for href in gone:
            self.mirror.pop(href, None)
        for href, (etag, title) in fetched.items():
            self.check_title(href, title)
            self.mirror[href] = (etag, title)
        self.token, self.ctag = changes.sync_token or "", ctag
        return True

    def check_title(self, href: str, title: str) -> None:
        """A synced event of a writer must carry a title that writer has attempted."""
        uid = href.rsplit("/", 1)[1].removesuffix(".ics")
        writer = self.writers.get(uid)
        if writer is not None and not re.fullmatch(rf"{re.escape(uid)} v\d+", title):
            self.traffic.fault(f"{self.name}: {href} synced with title {title!r}, never written")

    def titles(self) -> dict[str, str]:
        return {href.rsplit("/", 1)[1]: title for href, (_, title) in self.mirror.items()}


@dataclass
class Report:
    """The figures of one run (times in seconds from the start of the traffic)."""

    seconds: float
    served: dict[str, int]  # "host0" / "host1" / "nginx" (answered by nginx itself) -> requests
    served_after_kill: dict[str, int]
    served_after_restart: dict[str, int]
    killed_at: float
    restarted_at: float
    retried: list[str]  # requests nginx sent to a second host, with their outcome
    failures: list[str]  # requests a client saw fail (no answer, 5xx, 412 of a retried write)
    failure_times: list[float]
    acknowledged: dict[str, int]
    acknowledged_after_kill: int
    syncs: int
    syncs_after_kill: int
    events: int
    faults: list[str]  # lost writes, phantom data, disagreeing syncs: must be empty
    outage: str = "kill"
    slowest_near_kill: float = 0.0  # longest nginx request time (s) of requests ending within 5 s of the kill
    median_seconds: float = 0.0  # median nginx request time over the whole run

    def summary(self) -> str:
        """The figures as a few lines of text; the first line is the verdict."""
        acks = sum(self.acknowledged.values())
        served = ", ".join(f"{name} {count}" for name, count in sorted(self.served.items()))
        after_kill = ", ".join(f"{name} {count}" for name, count in sorted(self.served_after_kill.items()))
        after_restart = ", ".join(f"{name} {count}" for name, count in sorted(self.served_after_restart.items()))
        moments = [round(t - self.killed_at, 2) for t in self.failure_times]
        return "\n".join([
            f"two hosts: {acks} acknowledged writes, {len(self.faults)} lost writes or disagreeing syncs; "
            f"{len(self.failures)} requests failed for the clients, {len(self.retried)} retried by nginx",
            f"  {self.seconds:.1f} s of traffic; host0 out ({self.outage}) at {self.killed_at:.1f} s, "
            f"serving again at {self.restarted_at:.1f} s",
            f"  requests served: {served}; between kill and restart: {after_kill}; after the restart: {after_restart}",
            f"  retried on the other host by nginx (method, upstream statuses): {dict(Counter(self.retried))}",
            f"  failed for the clients: {dict(Counter(self.failures))} at {moments} s from the kill",
            f"  acknowledged writes: {self.acknowledged} ({self.acknowledged_after_kill} after the kill); "
            f"completed syncs {self.syncs} ({self.syncs_after_kill} after the kill); {self.events} events at the end",
            f"  request time through nginx: median {self.median_seconds * 1000:.0f} ms, "
            f"slowest ending within 5 s of the kill {self.slowest_near_kill * 1000:.0f} ms",
        ])


@dataclass
class Scenario:
    """Two hosts, nginx, clients; ``run`` does the whole scenario and returns its Report.

    ``phase`` seconds of traffic before the kill, with one host down, and after the
    restart (each phase also waits until it has seen what it needs, within deadlines).
    """

    database_url: str
    directory: Path
    phase: float = 3.0
    writers: int = 3
    syncers: int = 2
    workers: int = 2
    seeded: int = 40
    outage: str = "kill"  # "kill": SIGKILL host 0, then start it again; "link-down": cut its link, then restore it
    read_timeout: float = 30.0  # nginx's proxy_read_timeout (a cut link stalls requests this long)

    def run(self) -> Report:
        seed(self.database_url, self.seeded)
        server_url = postgres_socket_url(self.database_url)
        with Network(self.directory) as network:
            nginx = Nginx(self.directory / "nginx", network.hosts, read_timeout=self.read_timeout)
            try:
                for host in network.hosts:
                    host.start(server_url, self.workers)
                for host in network.hosts:
                    host.wait_serving(OWNER, PASSWORD, CAL, dav.body("04a-propfind-calendar-ctag.xml"))
                nginx.start()
                return self.traffic(network.hosts, nginx)
            finally:
                nginx.stop()

    def traffic(self, hosts: list[Host], nginx: Nginx) -> Report:
        traffic = Traffic(nginx.url)
        writers = [Writer(n, traffic) for n in range(self.writers)]
        syncers = [Syncer(n, traffic, writers) for n in range(self.syncers)]
        clients: list[Writer | Syncer] = [*writers, *syncers]
        threads = [threading.Thread(target=c.run, name=c.name) for c in clients]
        began = time.time()
        for thread in threads:
            thread.start()
        try:
            victim = hosts[0]
            names = {host.upstream: f"host{host.number}" for host in hosts}

            def served_since(since: float) -> Counter[str]:
                return Counter(_served_by(entry, names) for entry in nginx.entries() if entry.time >= since)

            self.wait_traffic(lambda: min(served_since(began)[f"host{h.number}"] for h in hosts) >= 10, 30,
                              "both hosts serving through nginx")
            killed = time.time()
            acks_before, syncs_before = sum(traffic.acknowledged.values()), traffic.syncs
            self.fail(victim)
            down = time.time()  # requests logged before this may have been answered by the victim
            self.wait_traffic(lambda: sum(traffic.acknowledged.values()) >= acks_before + 10
                              and traffic.syncs >= syncs_before + 3, 30, "clients carrying on after the kill")
            self.revive(victim)
            victim.wait_serving(OWNER, PASSWORD, CAL, dav.body("04a-propfind-calendar-ctag.xml"))
            restarted = time.time()
            self.wait_traffic(lambda: served_since(restarted)[f"host{victim.number}"] >= 10, 30,
                              "nginx sending requests to the restarted host")
        finally:
            traffic.stop.set()
            for thread in threads:
                thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a client thread did not stop"
        faults = list(traffic.faults) + self.final_checks(traffic, writers, syncers, hosts)
        entries = nginx.entries()
        retried = [f"{e.method} {'/'.join(e.upstream_statuses)}" for e in entries if len(e.upstreams) > 1]
        failures = traffic.failures()
        return Report(
            seconds=time.time() - began,
            served=dict(Counter(_served_by(e, names) for e in entries)),
            served_after_kill=dict(Counter(_served_by(e, names) for e in entries if down <= e.time < restarted)),
            served_after_restart=dict(Counter(_served_by(e, names) for e in entries if e.time >= restarted)),
            killed_at=killed - began, restarted_at=restarted - began, retried=retried,
            failures=[f"{f.method} {f.status or f.error}" for f in failures],
            failure_times=[f.time - began for f in failures],
            acknowledged=dict(traffic.acknowledged),
            acknowledged_after_kill=sum(traffic.acknowledged.values()) - acks_before,
            syncs=traffic.syncs, syncs_after_kill=traffic.syncs - syncs_before,
            events=len(exported(self.database_url)), faults=faults, outage=self.outage,
            slowest_near_kill=max((e.seconds for e in entries if killed <= e.time <= killed + 5), default=0.0),
            median_seconds=statistics.median(e.seconds for e in entries) if entries else 0.0,
        )

    def fail(self, host: Host) -> None:
        if self.outage == "kill":
            host.kill()
        elif self.outage == "link-down":
            host.link(up=False)
        else:
            raise ValueError(f"unknown outage {self.outage!r} (kill or link-down)")

    def revive(self, host: Host) -> None:
        if self.outage == "kill":
            host.start(postgres_socket_url(self.database_url), self.workers)
        else:
            host.link(up=True)

    def wait_traffic(self, condition: Any, seconds: float, what: str) -> None:
        """Let the traffic run at least ``phase`` seconds, then until ``condition`` holds."""
        ends = time.monotonic() + self.phase
        wait_for(lambda: time.monotonic() >= ends and condition(), seconds + self.phase, what)

    def final_checks(self, traffic: Traffic, writers: list[Writer], syncers: list[Syncer],
                     hosts: list[Host]) -> list[str]:
        """After the traffic: the export holds what each writer last knew, GETs through nginx
        return it, each syncer's mirror (after one more incremental sync) equals the export
        and a full sync, and each host asked directly syncs the same. Returns the disagreements."""
        export = exported(self.database_url)
        faults = [f"{uid}: export holds {export.get(f'{uid}.ics')!r}, the last acknowledged or read back was {known}"
                  for writer in writers for uid, known in writer.state.items()
                  if export.get(f"{uid}.ics") != (known[0] if known else None)]
        checker = Writer(-1, traffic)
        with traffic.client() as http:
            for name, title in export.items():
                got = checker.read(http, name.removesuffix(".ics")) if name.startswith("W") else (title, "")
                if got is None or got[0] != title:
                    faults.append(f"{name}: the export holds {title!r}, GET through nginx answers {got}")
            full = Syncer(-1, traffic, writers)
            if not full.poll(http, force=True) or full.titles() != export:
                faults.append("a full sync through nginx failed or differs from the export")
            faults += [f"{syncer.name}: {problem}" for syncer in syncers
                       if (problem := _sync_problem(syncer, http, export, full))]
        for host in hosts:
            direct = Syncer(-1, traffic, writers)
            with httpx.Client(base_url=f"http://{host.upstream}", auth=(OWNER, PASSWORD), timeout=30) as http:
                if not direct.poll(http, force=True) or direct.mirror != full.mirror:
                    faults.append(f"host{host.number} asked directly: its full sync differs from the one through nginx")
        return faults


def _sync_problem(syncer: Syncer, http: httpx.Client, export: dict[str, str], full: Syncer) -> str | None:
    """What is wrong after one more incremental sync of ``syncer``, None when nothing."""
    if not syncer.poll(http, force=True):
        return "its last sync failed"
    if syncer.titles() != export:
        differing = sorted(set(syncer.titles().items()) ^ set(export.items()))
        return f"synced calendar differs from the export: {differing[:6]}"
    if syncer.mirror != full.mirror:
        return "ETags differ from a full sync"
    return None


def _served_by(entry: LogEntry, names: dict[str, str]) -> str:
    """Which host answered a request: the last one nginx tried, unless that one failed
    too (502/504 from nginx itself)."""
    last_status = entry.upstream_statuses[-1] if entry.upstream_statuses else ""
    if entry.served_by is None or last_status in ("502", "504", ""):
        return "nginx"
    return names.get(entry.served_by, entry.served_by)
