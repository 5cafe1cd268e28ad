"""Where a request's time goes inside the application, without HTTP: the iPhone's requests
of a first sync (S1) and a poll, sent straight to the WSGI application.

    python bench/in_process.py --n 2000            # times of each request kind
    python bench/in_process.py --n 2000 --split    # a multiget of 50, by part

The calendar is loaded as bench/run.py loads ours (`crm-caldav import` into a fresh SQLite
file, or `--db` PostgreSQL, dropped and re-created). The application is the one `serve`
runs (server.app.create_app, request log and metrics included), called in this process
with the same headers and bodies as bench/dav.py sends; each answer is read and closed,
as a server does. What this leaves out, compared with bench/run.py, is waitress and the
client: their share of S1 is run.py's time minus this one.

Times are the best of 5 rounds (`--rounds`) of many calls each: the fastest round is the
one least disturbed by other work on the machine, and what a change saves shows there
first. `--split` wraps the parts of a multiget (body checks, the SQL, the XML and gzip)
in timers and prints microseconds per multiget for each.
"""
from __future__ import annotations

import argparse
import base64
import collections
import gc
import gzip
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen  # noqa: E402
import dav  # noqa: E402
import servers  # noqa: E402
from run import pg_reset  # noqa: E402

CAL = f"/{datagen.BENCH_USER}/crm/"
HOME = f"/{datagen.BENCH_USER}/"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="events in the bench user's calendar")
    ap.add_argument("--db", help="PostgreSQL URL instead of SQLite (the database is dropped and re-created)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per request kind (the best is shown)")
    ap.add_argument("--split", action="store_true", help="also time the parts of a multiget")
    return ap.parse_args(argv)


class Requests:
    """The WSGI application and the requests of an iPhone first sync, as environ dicts."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        credentials = f"{datagen.BENCH_USER}:{datagen.BENCH_PASSWORD}".encode()
        self.authorization = "Basic " + base64.b64encode(credentials).decode()
        self.sync_body = dav.SYNC_COLLECTION.format(token="").encode()
        status, answer = self.call("REPORT", CAL, self.sync_body, "1")
        assert status.startswith("207"), status
        members, _, _ = dav.parse_multistatus(gzip.decompress(answer) if answer[:2] == b"\x1f\x8b" else answer)
        hrefs = [member.href for member in members]
        self.multigets = [dav.multiget_body(hrefs[i:i + 50]).encode() for i in range(0, len(hrefs), 50)]

    def call(self, method: str, path: str, body: bytes, depth: str | None = None) -> tuple[str, bytes]:
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5232", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "wsgi.version": (1, 0), "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": dav.XML_HEADERS["Content-Type"], "HTTP_AUTHORIZATION": self.authorization,
            **{"HTTP_" + name.upper().replace("-", "_"): value
               for name, value in {**dav.IOS_HEADERS, **dav.XML_HEADERS}.items() if name != "Content-Type"},
        }
        if depth is not None:
            environ["HTTP_DEPTH"] = depth
        statuses: list[str] = []
        answer = self.app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        try:
            return statuses[0], b"".join(answer)
        finally:
            getattr(answer, "close", lambda: None)()  # the request log line and the metrics

    def home(self) -> None:
        self.call("PROPFIND", HOME, dav.PROPFIND_HOME.encode(), "1")

    def sync(self) -> None:
        self.call("REPORT", CAL, self.sync_body, "1")

    def multiget(self) -> None:
        self.call("REPORT", CAL, self.multigets[len(self.multigets) // 2])

    def poll(self) -> None:
        self.call("PROPFIND", CAL, dav.PROPFIND_CTAG.encode(), "0")

    def first_sync(self) -> None:
        self.home()
        self.sync()
        for body in self.multigets:
            self.call("REPORT", CAL, body)


def best(function: Callable[[], None], calls: int, rounds: int) -> float:
    """Seconds per call in the fastest of ``rounds`` rounds of ``calls`` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls)
    return min(times)


def split_multiget(requests: Requests, calls: int = 2000) -> dict[str, float]:
    """Microseconds per multiget spent in each part (nested parts are indented)."""
    import server.handler
    import server.request_checks
    import storage_plugin.backend
    import storage_plugin.reports

    spent: collections.Counter[str] = collections.Counter()
    parts = [
        (server.request_checks, "check_body", "body checks (server.request_checks)"),
        (storage_plugin.reports, "parse_report", "reading the REPORT (parse_report)"),
        (storage_plugin.backend.CalendarBackend, "report", "answer from SQL (CalendarBackend.report)"),
        (storage_plugin.backend, "_current_user", "  the login's row"),
        (storage_plugin.reports.calendar_service, "list_offered_entries", "  the entries and their texts"),
        (server.handler, "encode_answer", "XML text, UTF-8 and gzip (encode_answer)"),
    ]
    for owner, name, label in parts:
        function = getattr(owner, name)

        def timed(*args, _function=function, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                spent[_label] += time.perf_counter() - start

        setattr(owner, name, timed)
    for _ in range(200):
        requests.multiget()
    spent.clear()
    start = time.perf_counter()
    for _ in range(calls):
        requests.multiget()
    total = (time.perf_counter() - start) / calls
    shares = {label: spent[label] / calls * 1e6 for _, _, label in parts}
    shares["the rest (handler, login cache, request log, metrics)"] = total * 1e6 - sum(
        value for label, value in shares.items() if not label.startswith("  "))
    return {"multiget in all": total * 1e6, **shares}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crm-caldav-inproc-") as tmp:
        db_url = pg_reset(args.db) if args.db else None  # the URL with the driver installed here
        ours = servers.Ours(Path(tmp), db_url=db_url)
        ours.load(datagen.generate(args.n, seed=20261121))
        os.environ["CRM_CALDAV_DB"] = ours.db_url
        from server.app import create_app
        from server.config import load_settings

        # The request log writes its line as in `serve` (to the standard error of the moment),
        # here to /dev/null rather than the terminal.
        terminal, sys.stderr = sys.stderr, open(os.devnull, "w")
        try:
            measure(Requests(create_app(load_settings())), args)
        finally:
            sys.stderr = terminal


def measure(requests: Requests, args: argparse.Namespace) -> None:
    """Print the times of each request kind (and with ``args.split``, of a multiget's parts)."""
    requests.first_sync()  # warm: the login, the statement caches, the renderings
    gc.collect()
    gc.freeze()  # as `serve` does after start-up (server.http.freeze_startup_objects)
    rounds = args.rounds
    print(f"N={args.n} ({'PostgreSQL' if args.db else 'SQLite'}), in-process, best of {rounds} rounds:")
    print(f"  home PROPFIND (Radicale)   {best(requests.home, 100, rounds) * 1e3:8.3f} ms")
    print(f"  initial sync-collection    {best(requests.sync, 20, rounds) * 1e3:8.3f} ms")
    print(f"  multiget of 50             {best(requests.multiget, 300, rounds) * 1e3:8.3f} ms")
    print(f"  poll (getctag PROPFIND)    {best(requests.poll, 1000, rounds) * 1e3:8.3f} ms")
    first_sync = best(requests.first_sync, 3, rounds)
    print(f"  first sync (S1: {len(requests.multigets)} multigets) {first_sync * 1e3:8.1f} ms")
    if args.split:
        print("A multiget of 50, by part (us):")
        for label, value in split_multiget(requests).items():
            print(f"  {label:55s} {value:7.0f}")


if __name__ == "__main__":
    main()
