"""The timed scenarios S1-S6. Each `s*` function does one repetition against one server
through a `Dav` client and checks the answer; time is what `Dav.elapsed` accumulates,
so untimed preparation goes through the second (`prep`) client."""
from __future__ import annotations

import datetime as dt
import multiprocessing
import statistics
import time
import uuid
from dataclasses import dataclass, field

import icalendar

import datagen
from dav import Dav

BATCH = 50  # hrefs per calendar-multiget, as iOS does


class CheckFailed(AssertionError):
    pass


def check(cond: bool, msg: str):
    if not cond:
        raise CheckFailed(msg)


@dataclass
class Target:
    """One server under test plus what a client remembers between requests."""
    server: object
    ds: datagen.Dataset
    timed: Dav
    prep: Dav
    token: str = ""
    added: int = 0                 # events created by S5 so far
    edits: int = 0                 # events changed by S2 so far
    detail: dict = field(default_factory=dict)   # per-scenario breakdowns for the JSON

    def reconnect(self):
        """New clients after a server restart (it listens on a new port)."""
        for d in (self.timed, self.prep):
            d.close()
        self.timed = Dav(self.server.base_url, self.server.auth)
        self.prep = Dav(self.server.base_url, self.server.auth)

    @property
    def cal(self) -> str:
        return self.server.cal

    @property
    def expected_members(self) -> int:
        return self.ds.n + self.added


def month_window(today: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Thirty days around today, in UTC (S4)."""
    start = dt.datetime.combine(today - dt.timedelta(days=14), dt.time(0), dt.UTC)
    return start, start + dt.timedelta(days=30)


def ical_utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def unfold(text: str) -> str:
    return text.replace("\r\n ", "").replace("\n ", "").replace("\r\n\t", "")


# --- scenarios -----------------------------------------------------------------

def s1_first_sync(t: Target):
    """iPhone first sync: home PROPFIND, full sync-collection, multiget everything."""
    d = t.timed
    t0 = d.elapsed
    d.propfind_home(t.server.home)
    t1 = d.elapsed
    members, token = d.sync_collection(t.cal, "")
    t2 = d.elapsed
    hrefs = [m.href for m in members if m.status in (0, 200)]
    fetched = 0
    for i in range(0, len(hrefs), BATCH):
        got = d.multiget(t.cal, hrefs[i:i + BATCH])
        fetched += sum(1 for m in got if m.status == 200 and m.data and "BEGIN:VEVENT" in m.data)
    batches = max(1, -(-len(hrefs) // BATCH))
    # Where the time goes (last rep wins): shown in the JSON, not in the table.
    t.detail["S1"] = {"propfind_home_ms": round((t1 - t0) * 1000, 2),
                      "sync_initial_ms": round((t2 - t1) * 1000, 2),
                      "multiget_ms_per_batch": round((d.elapsed - t2) * 1000 / batches, 2)}
    check(len(hrefs) == t.expected_members,
          f"S1: sync-collection listed {len(hrefs)} members, expected {t.expected_members}")
    check(fetched == t.expected_members,
          f"S1: multiget returned {fetched} events, expected {t.expected_members}")
    check(bool(token), "S1: no sync-token in the sync-collection answer")
    t.token = token


def s2_one_change(t: Target):
    """Untimed: an edit of one event (GET, change SUMMARY, PUT If-Match). Timed: the
    sync-collection that finds it and the multiget that fetches it."""
    p = t.prep
    ev = t.ds.bench_events[(t.edits * 7919) % t.ds.n]   # a different event each rep
    href = t.cal + ev.href
    _, t.token = p.sync_collection(t.cal, t.token)      # start from an up-to-date token
    resp = p.request("GET", href, expect=(200,))
    etag = resp.headers.get("ETag")
    check(bool(etag), f"S2: GET {href} has no ETag header")
    cal = icalendar.Calendar.from_ical(resp.content)
    vevent = next(c for c in cal.walk("VEVENT"))
    t.edits += 1
    new_title = f"{ev.title} (edit {t.edits})"
    vevent["SUMMARY"] = icalendar.vText(new_title)
    p.put(href, cal.to_ical(), if_match=etag, expect=(200, 201, 204))

    d = t.timed
    members, token = d.sync_collection(t.cal, t.token)
    check(len(members) == 1, f"S2: sync-collection returned {len(members)} changes, expected 1: "
                             f"{[m.href for m in members][:5]}")
    check(members[0].href.endswith(ev.href), f"S2: changed href {members[0].href} is not {href}")
    got = d.multiget(t.cal, [members[0].href])
    check(len(got) == 1 and got[0].data is not None and new_title in unfold(got[0].data),
          f"S2: multiget of {href} does not carry the new SUMMARY {new_title!r}")
    t.token = token


def s3_poll(t: Target, d: Dav | None = None):
    """No-change poll: getctag + sync-token, then sync-collection with the current token."""
    d = d or t.timed
    d.propfind_ctag(t.cal)
    members, token = d.sync_collection(t.cal, t.token)
    check(not members, f"S3: {len(members)} changes reported on an unchanged calendar: "
                       f"{[m.href for m in members][:5]}")
    t.token = token or t.token


def _s4(t: Target, with_data: bool):
    start, end = month_window(t.ds.today)
    expected = t.ds.overlapping(start, end)
    got = t.timed.calendar_query(t.cal, ical_utc(start), ical_utc(end), with_data)
    found = [m for m in got if m.status in (0, 200)]
    check(len(found) == expected, f"S4: calendar-query {ical_utc(start)}..{ical_utc(end)} "
                                  f"returned {len(found)} events, expected {expected}")
    if with_data:
        check(all(m.data and "BEGIN:VEVENT" in m.data for m in found),
              "S4b: calendar-query answer lacks calendar-data")


def s4a_query_etags(t: Target):
    _s4(t, with_data=False)


def s4b_query_data(t: Target):
    _s4(t, with_data=True)


def s5_create(t: Target):
    """PUT of a brand-new event with If-None-Match: *; placed 3 years out so that it
    does not change S4's month."""
    i = t.added
    tz = dt.UTC
    day = t.ds.today + dt.timedelta(days=3 * 365 + i)
    start = dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=tz)
    ev = datagen.Event(
        id=f"new-{i}", owner=datagen.BENCH_USER, type="meeting", title=f"New meeting {i}",
        start=start, end=start + dt.timedelta(hours=1), tzid="UTC", location="Room 1",
        description="Created by the benchmark (S5).", reminder_minutes=15, participants=[],
        attendees=[("Kenji Sato", "kenji@example.jp")],
        uid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-new-{t.ds.n}-{i}")).upper())
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t.timed.put(t.cal + ev.href, datagen.event_ics(ev, t.ds.today, stamp),
                if_none_match=True, expect=(201,))
    t.added += 1


# In run order: S1 first, as it checks that exactly N events are there; S2 and S5
# change the calendar, so they come after the read-only ones. Labels: report.ROWS.
SCENARIOS = [
    ("S1", s1_first_sync),
    ("S3", s3_poll),
    ("S4a", s4a_query_etags),
    ("S4b", s4b_query_data),
    ("S2", s2_one_change),
    ("S5", s5_create),
]


def run_scenario(t: Target, key: str, fn, reps: int, budget_s: float) -> dict:
    """First run is a warm-up (discarded). Reps are cut when one takes so long that
    `reps` of them would exceed `budget_s`; the result says how many ran. A failed
    answer check does not stop the timing: the result carries it as "wrong" (a peer's
    bug is a finding, not a reason to drop its numbers)."""
    samples, warmup, wrong = [], None, None
    for i in range(reps + 1):
        before = t.timed.elapsed
        try:
            fn(t)
        except CheckFailed as e:
            wrong = wrong or str(e)
        took = t.timed.elapsed - before
        if i == 0:
            warmup = took * 1000
        else:
            samples.append(took * 1000)
            if sum(samples) / 1000 + took > budget_s:
                break
    out = {"median": statistics.median(samples), "unit": "ms", "reps": len(samples),
           "samples": [round(s, 2) for s in samples], "warmup": round(warmup, 2)}
    if key in t.detail:
        out["detail"] = t.detail[key]
    if wrong:
        out["wrong"] = wrong
    return out


# --- S6: polls per second --------------------------------------------------------

def _poller(base_url, auth, cal, token, start_at, duration, out):
    """One client process: poll (S3) in a loop until the deadline."""
    d = Dav(base_url, auth, timeout=60)   # a poll slower than this counts as an error
    polls = errors = 0
    first_error = None
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + duration
    while time.time() < end:
        try:
            d.propfind_ctag(cal)
            members, _ = d.sync_collection(cal, token)
            if members:
                raise CheckFailed(f"{len(members)} changes on an unchanged calendar")
            polls += 1
        except Exception as e:  # HTTP status, timeout, failed check: count, go on
            errors += 1
            first_error = first_error or repr(e)[:300]
    d.close()
    out.put((polls, errors, first_error, time.time()))


def polls_per_second(t: Target, clients: int, duration: float) -> dict:
    """Separate processes so the client side is not serialised by one GIL."""
    _, t.token = t.prep.sync_collection(t.cal, t.token)   # absorb S2/S5 changes first
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.5
    srv = t.server
    procs = [ctx.Process(target=_poller, args=(srv.base_url, srv.auth, srv.cal, t.token,
                                              start_at, duration, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=duration + 120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    polls = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    first_error = next((r[2] for r in results if r[2]), None)
    # A poll started before the deadline is allowed to finish: divide by the real
    # window, which matters for servers that need seconds per poll.
    window = max(r[3] for r in results) - start_at
    return {"median": polls / window, "unit": "polls/s", "reps": 1, "polls": polls,
            "errors": errors, "first_error": first_error, "clients": clients,
            "seconds": round(window, 2)}
