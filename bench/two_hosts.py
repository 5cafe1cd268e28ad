"""Two server hosts behind nginx, one PostgreSQL, one host SIGKILLed mid-traffic and brought
back: the scenario of tests/test_two_hosts.py (tests/two_hosts.py), run longer and with
more clients, printing its figures.

Each host is a network namespace running `crm-caldav serve --workers W`; nginx balances
between them (`proxy_next_upstream error timeout`, `max_fails=1 fail_timeout=2s`). Clients
(iPhone requests: writers with conditional PUT / DELETE, syncers polling getctag,
sync-collection and multiget) run through nginx for --phase seconds, then host 0 is
SIGKILLed, --phase seconds later it is started again, and after --phase more seconds the
traffic stops and the checks run. Prints requests served per host (nginx's access log),
requests nginx retried on the other host, requests that failed for the clients (with
their time from the kill), acknowledged writes and lost writes. Needs root, iproute2 and
nginx. Usage (from the repository root, with the venv's Python):

    python bench/two_hosts.py [--phase 20] [--writers 6] [--syncers 4] [--workers 2]
                              [--outage kill|link-down] [--read-timeout 30]
                              [--db postgresql://postgres@127.0.0.1:5432/postgres] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.netns import unavailable_reason  # noqa: E402
from tests.two_hosts import Scenario, scratch_database  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", type=float, default=20.0, help="seconds before the kill, while down, after")
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--syncers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="server processes per host")
    parser.add_argument("--outage", choices=["kill", "link-down"], default="kill",
                        help="kill: SIGKILL host 0's processes, then start them again; link-down: take its veth "
                             "link down (it keeps running: a partition), then up again")
    parser.add_argument("--read-timeout", type=float, default=30.0,
                        help="nginx proxy_read_timeout: how long a request sent to a cut-off host stalls")
    parser.add_argument("--seeded", type=int, default=200, help="events in the calendar before the traffic")
    parser.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL on this machine; a scratch database is made there and dropped")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    if reason := unavailable_reason():
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="two-hosts-") as directory, scratch_database(args.db) as url:
        report = Scenario(url, Path(directory), phase=args.phase, writers=args.writers, syncers=args.syncers,
                          workers=args.workers, seeded=args.seeded, outage=args.outage,
                          read_timeout=args.read_timeout).run()
    print(report.summary())
    for fault in report.faults:
        print(f"FAULT: {fault}")
    if args.out:
        args.out.write_text(json.dumps(dataclasses.asdict(report), indent=1))
    return 1 if report.faults else 0


if __name__ == "__main__":
    sys.exit(main())
