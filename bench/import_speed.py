"""Loading one calendar of N events: `crm-caldav import` (SQLite, PostgreSQL) vs Xandikos.

    python bench/import_speed.py --n 50000 --reps 3 --db postgresql://postgres@127.0.0.1:5432/bench_import

The bench user's calendar alone (the N events bench/run.py loads into the peers, same
UIDs and hrefs, with the contacts and leads they name), side by side in one run:

- **ours**: the path a CRM uses. Per rep a fresh database; the users are imported and
  CalDAV enabled for the bench user (untimed), then the timed step is one
  `crm-caldav import FILE` process of the JSON file, written before the clock starts.
- **xandikos**: `servers.Xandikos.load`, i.e. the .ics files written into its git
  calendar and one commit (rendered before the clock starts).

Prints, per store, the median seconds over `--reps`, events/s and the ratio to
Xandikos' median in the same run (below 1.00 = faster than Xandikos).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen  # noqa: E402
import servers  # noqa: E402
from run import loadavg, pg_reset  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50000, help="events in the bench user's calendar")
    ap.add_argument("--reps", type=int, default=3, help="timed loads per store (median shown)")
    ap.add_argument("--db", help="also PostgreSQL at this URL (the database is dropped and re-created per rep)")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--seed", type=int, default=20261121)
    return ap.parse_args(argv)


def calendar_document(ds: datagen.Dataset) -> dict:
    """The bench user's activities and the people they name, as `crm-caldav import` takes them."""
    return {"contacts": ds.contacts, "leads": ds.leads,
            "activities": [datagen.crm_activity(e) for e in ds.bench_events]}


def load_ours(workdir: Path, db_url: str, document: Path) -> float:
    """Seconds of one `crm-caldav import` of ``document`` into a database holding the enabled user."""
    ours = servers.Ours(workdir, db_url=db_url, label=f"ours-{time.monotonic_ns()}")
    ours._import(datagen.crm_users(), "users.json")
    ours.run([ours.exe, "caldav", "enable", ours.user, "--password-stdin", "--json"], stdin=ours.password)
    t0 = time.perf_counter()
    ours.run([ours.exe, "import", str(document)])
    return time.perf_counter() - t0


def load_xandikos(workdir: Path, ds: datagen.Dataset, rep: int) -> float:
    peer = servers.Xandikos(workdir / f"x{rep}")
    return peer.load(ds)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"generating {args.n} events (load average {loadavg()})", flush=True)
    ds = datagen.generate(args.n, seed=args.seed)
    datagen.peer_files(ds)  # rendered once, outside Xandikos' timed load
    stores: dict[str, list[float]] = {"xandikos": []}
    with tempfile.TemporaryDirectory(prefix="crm-import-speed-") as tmp:
        workdir = Path(tmp)
        document = workdir / "calendar.json"
        document.write_text(json.dumps(calendar_document(ds), ensure_ascii=False))
        runs: list[tuple[str, object]] = []
        if not args.skip_sqlite:
            runs.append(("ours sqlite", lambda rep: load_ours(workdir / f"s{rep}", f"sqlite:///{workdir}/s{rep}.db",
                                                              document)))
        if args.db:
            runs.append(("ours postgresql", lambda rep: load_ours(workdir / f"p{rep}", pg_reset(args.db), document)))
        runs.append(("xandikos", lambda rep: load_xandikos(workdir, ds, rep)))
        try:
            for rep in range(args.reps):  # interleaved, so that noise hits every store alike
                for name, load in runs:
                    seconds = load(rep)  # type: ignore[operator]
                    stores.setdefault(name, []).append(seconds)
                    print(f"  rep {rep + 1}: {name:16} {seconds:7.2f} s", flush=True)
        finally:
            if args.db:
                pg_reset(args.db, drop_only=True)
    reference = statistics.median(stores["xandikos"])
    print(f"\nN={args.n}, median of {args.reps} (load average {loadavg()}):")
    print(f"{'store':16} {'seconds':>8} {'events/s':>9} {'vs xandikos':>12}")
    for name, samples in stores.items():
        median = statistics.median(samples)
        print(f"{name:16} {median:8.2f} {args.n / median:9.0f} {median / reference:11.2f}x")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
