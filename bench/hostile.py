"""Load checks of the embedded server under hostile traffic (issue: hostile network, hostile input).

Starts `crm-caldav serve` as production does (one process, 8 threads) on a
small seeded CRM, then, while one legitimate user polls (PROPFIND getctag +
sync-token, Depth 0) and records each answer's latency:

  unauth      64 concurrent loops of PROPFIND without credentials, --seconds long
  guess-1     32 loops of wrong passwords on one account from one address
  guess-32    32 loops of wrong passwords on another account, each from its own address
              (X-Forwarded-For through the trusted loopback proxy setting)
  slow        1,000 half-open connections and 20 bodies trickled a byte a second, --slow-seconds long
  attendees   PUTs of one event with 1,000 / 2,000 / 4,000 ATTENDEEs (limit raised), timed

Prints the poller's median / p99 / max latency and failures per phase, the
guesses the server actually checked (401; 429 answers are refused unchecked),
and the PUT times with their growth ratios. The attackers run in their own
processes. Usage (from the repository root, with the venv's Python):

    python bench/hostile.py [--seconds 10] [--slow-seconds 30] [--db URL] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import datagen  # noqa: E402
import servers  # noqa: E402

POLL = (b'<?xml version="1.0" encoding="UTF-8"?><A:propfind xmlns:A="DAV:"><A:prop>'
        b'<B:getctag xmlns:B="http://calendarserver.org/ns/"/><A:sync-token/></A:prop></A:propfind>')
ATTACKED = [email for email, _, _ in datagen.OTHER_USERS[:2]]  # one account per guessing phase


# --- the legitimate poller ----------------------------------------------------------

class Poller(threading.Thread):
    """Polls the bench user's calendar every 50 ms and records (latency, ok) per answer."""

    def __init__(self, server: servers.Ours) -> None:
        super().__init__(daemon=True)
        self.server, self.samples, self.stop_event = server, [], threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.server.base_url, auth=self.server.auth, timeout=30) as client:
            while not self.stop_event.is_set():
                started = time.perf_counter()
                try:
                    ok = client.request("PROPFIND", self.server.cal, content=POLL,
                                        headers={"Depth": "0"}).status_code == 207
                except httpx.HTTPError:
                    ok = False
                self.samples.append((time.perf_counter() - started, ok))
                self.stop_event.wait(0.05)

    def measure(self, phase) -> dict:
        self.samples = []
        extra = phase()
        samples = list(self.samples)
        latencies = sorted(s[0] * 1000 for s in samples) or [float("nan")]
        return {"polls": len(samples), "failed": sum(1 for s in samples if not s[1]),
                "median_ms": round(statistics.median(latencies), 2),
                "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
                "max_ms": round(latencies[-1], 2), **(extra or {})}


# --- attackers (own processes) --------------------------------------------------------

async def _loops(url: str, path: str, seconds: float, loops: int, auth, addresses: list[str]) -> dict:
    counts: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    async def loop(number: int) -> None:
        headers = {"Depth": "0"}
        if addresses:
            headers["X-Forwarded-For"] = addresses[number % len(addresses)]
        async with httpx.AsyncClient(base_url=url, auth=auth, timeout=30) as client:
            while time.monotonic() < deadline:
                try:
                    status = str((await client.request("PROPFIND", path, content=POLL, headers=headers)).status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                counts[status] = counts.get(status, 0) + 1

    await asyncio.gather(*(loop(n) for n in range(loops)))
    return counts


def _attack(queue, *args) -> None:
    queue.put(asyncio.run(_loops(*args)))


def flood(server: servers.Ours, seconds: float, loops: int, auth, addresses: list[str], path: str):
    def phase() -> dict:
        queue = multiprocessing.Queue()
        process = multiprocessing.Process(target=_attack,
                                          args=(queue, server.base_url, path, seconds, loops, auth, addresses))
        process.start()
        counts = queue.get()
        process.join()
        return {"attacker_answers": counts, "guesses_checked": counts.get("401", 0) if auth else None}
    return phase


def _hold_slow(port: int, half_open: int, trickled: int, seconds: float, ready) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, half_open + trickled + 512), hard))
    held, trickles = [], []
    for _ in range(half_open):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"PROPFIND / HTTP/1.1\r\nHost: x\r\n")
        held.append(sock)
    for n in range(trickled):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"PUT /x/crm/slow-{n}.ics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode())
        trickles.append(sock)
    ready.set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for sock in trickles:
            try:
                sock.sendall(b"x")
            except OSError:
                pass
        time.sleep(1)
    for sock in held + trickles:
        sock.close()


def slow(server: servers.Ours, seconds: float, half_open: int = 1000, trickled: int = 20):
    def phase() -> dict:
        ready = multiprocessing.Event()
        process = multiprocessing.Process(target=_hold_slow,
                                          args=(server.port, half_open, trickled, seconds, ready))
        process.start()
        ready.wait(120)
        process.join()
        return {"half_open": half_open, "trickled": trickled}
    return phase


# --- attendees ----------------------------------------------------------------------

def attendee_event(uid: str, count: int) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN", "BEGIN:VEVENT", f"UID:{uid}",
             "DTSTAMP:20261120T100000Z", "DTSTART:20261215T100000Z", "DTEND:20261215T110000Z",
             f"SUMMARY:All hands {count}", f"ORGANIZER:mailto:{datagen.BENCH_USER}"]
    lines += [f"ATTENDEE;CN=Guest {n};PARTSTAT=NEEDS-ACTION:mailto:guest{n}@attendees.example" for n in range(count)]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode()


def attendees(server: servers.Ours, counts=(1000, 2000, 4000)) -> dict:
    out = {}
    with httpx.Client(base_url=server.base_url, auth=server.auth, timeout=600) as client:
        for count in counts:
            uid = f"attendees-{count}"
            started = time.perf_counter()
            answer = client.put(f"{server.cal}{uid}.ics", content=attendee_event(uid, count),
                                headers={"Content-Type": "text/calendar"})
            out[count] = {"status": answer.status_code, "seconds": round(time.perf_counter() - started, 3)}
    times = [out[c]["seconds"] for c in counts]
    out["growth"] = [round(b / a, 2) for a, b in zip(times, times[1:], strict=False)]
    return out


# --- main ---------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--slow-seconds", type=float, default=30)
    parser.add_argument("--db", help="database URL (an empty database; default SQLite in a temp dir)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-caldav-hostile-") as tmp:
        server = servers.Ours(Path(tmp), db_url=args.db)
        server.load(datagen.generate(200))
        for email in ATTACKED:
            server.run([server.exe, "caldav", "enable", email, "--json"])
        server.start()
        server_env_note = "CRM_CALDAV_MAX_ATTENDEES raised to 5000 for the attendee phase"
        results: dict = {"note": server_env_note}
        poller = Poller(server)
        poller.start()
        try:
            results["baseline"] = poller.measure(lambda: time.sleep(args.seconds / 2))
            results["unauth"] = poller.measure(flood(server, args.seconds, 64, None, [], server.cal))
            for phase, email, addresses in (("guess-1", ATTACKED[0], ["203.0.113.7"]),
                                            ("guess-32", ATTACKED[1], [f"198.51.100.{n}" for n in range(1, 33)])):
                results[phase] = poller.measure(flood(server, args.seconds, 32, (email, "not-the-password"),
                                                      addresses, f"/{email}/crm/"))
            results["slow"] = poller.measure(slow(server, args.slow_seconds))
        finally:
            poller.stop_event.set()
            server.stop()
        server.extra_env = {"CRM_CALDAV_MAX_ATTENDEES": "5000"}
        server.start()
        try:
            results["attendees"] = attendees(server)
        finally:
            server.stop()
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
