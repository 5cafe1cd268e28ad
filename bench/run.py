"""crm-caldav benchmark: ours vs stock Radicale 3.9 and Xandikos 0.4.10.

    python bench/run.py --n 2000,10000,50000      # full run (see bench/README.md)
    python bench/run.py --quick                   # N=500, 2 reps, short polls
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
import servers  # noqa: E402
from dav import Dav  # noqa: E402

PEERS = {"radicale": servers.Radicale, "xandikos": servers.Xandikos}
NPROC = len(os.sched_getaffinity(0))   # what `nproc` prints


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="2000,10000,50000", help="comma-separated event counts")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per scenario (default 5)")
    ap.add_argument("--quick", action="store_true", help="N=500, 2 reps, 2 s polls: a smoke test")
    ap.add_argument("--peers", default="radicale,xandikos", help="peers to compare with ('' = none)")
    ap.add_argument("--skip-ours", "--only-peers", dest="skip_ours", action="store_true")
    ap.add_argument("--only-ours", action="store_true")
    ap.add_argument("--db", help="also run ours on this PostgreSQL URL (the database is dropped and re-created)")
    ap.add_argument("--poll-seconds", type=float, default=5.0, help="duration of each S6 run")
    ap.add_argument("--budget", type=float, default=30.0,
                    help="seconds of timed reps per scenario and server before reps are cut (default 30)")
    ap.add_argument("--peer-max-n", default="0",
                    help="skip peers for N above this (0 = never skip); or per peer: xandikos=10000,radicale=0")
    ap.add_argument("--before", metavar="GIT_REF",
                    help="also run ours as of this commit (git archive into a temp dir, on PYTHONPATH): "
                         "a before/after comparison within one run")
    ap.add_argument("--workers", type=int, default=NPROC,
                    help="workers for ours' extra S6 run, if `serve --workers` exists")
    ap.add_argument("--chunk", type=int, default=25000, help="activities per import file for ours")
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (debugging)")
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.reps, a.poll_seconds = "500", 2, 2.0
    a.ns = [int(x) for x in a.n.split(",") if x.strip()]
    a.peer_list = [] if a.only_ours else [p for p in a.peers.split(",") if p]
    try:
        a.peer_max = _peer_max(a.peer_max_n)
    except ValueError:
        ap.error(f"--peer-max-n: expected N or peer=N[,peer=N], got {a.peer_max_n!r}")
    for p in a.peer_list:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r} (choose from {', '.join(PEERS)})")
    return a


def _peer_max(text: str) -> dict[str, int]:
    """{peer: largest N it runs at (0 = no limit)} from "10000" (every peer) or "xandikos=10000,radicale=0"."""
    if "=" not in text:
        return {p: int(text) for p in PEERS}
    limits = {p: 0 for p in PEERS}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in PEERS:
            raise ValueError(name)
        limits[name.strip()] = int(value)
    return limits


def before_tree(ref: str, workdir: Path) -> Path:
    """The repository's files as of ``ref`` (git archive), for ours-before's PYTHONPATH."""
    import subprocess
    repo = Path(__file__).resolve().parent.parent
    target = workdir / f"before-{ref}"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=repo, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_server(server: servers.Server, ds: datagen.Dataset, args) -> dict:
    """Load, start, run every scenario, stop. Failures are recorded, not raised."""
    res: dict = {"notes": server.notes}
    try:
        log(f"{server.name}: loading N={ds.n}")
        res["load"] = round(server.load(ds), 2)
        log(f"{server.name}: loaded in {res['load']:.1f} s; starting")
        server.start()
        t = scenarios.Target(server, ds, Dav(server.base_url, server.auth), Dav(server.base_url, server.auth))
        try:
            for key, fn in scenarios.SCENARIOS:
                res[key] = _guarded(lambda key=key, fn=fn: scenarios.run_scenario(t, key, fn, args.reps, args.budget),
                                    server, key)
            res["rss_all"] = round(server.rss_mib(), 1)
            server.reset_rss_peak()  # the polls' own peak, not the first sync's
            for clients in (1, 4):
                res[f"S6_{clients}"] = _guarded(
                    lambda clients=clients: scenarios.polls_per_second(t, clients, args.poll_seconds), server,
                    f"S6_{clients}")
            res["rss"] = round(server.rss_mib(), 1)
            if isinstance(server, servers.Ours) and server.supports_workers():
                # Same database, restarted with several worker processes for concurrency.
                server.stop()
                server.workers = args.workers
                server.start()
                t.reconnect()
                res["S6w_4"] = _guarded(lambda: scenarios.polls_per_second(t, 4, args.poll_seconds),
                                        server, "S6w_4")
                res["rssw"] = round(server.rss_mib(), 1)
                server.notes.append(f"S6 --workers row: crm-caldav serve --workers {args.workers}")
        finally:
            t.timed.close()
            t.prep.close()
    except Exception as e:  # a server that does not load or start: report, go on
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"{server.name}: FAILED: {res['error']}\n{traceback.format_exc()}")
    finally:
        server.stop()
    return res


def _guarded(fn, server, key):
    try:
        out = fn()
        log(f"{server.name} {key}: {report.fmt_cell(out, 0)} {out.get('unit', '')}")
        return out
    except Exception as e:
        msg = f"{type(e).__name__}: {e}"
        log(f"{server.name} {key}: FAILED: {msg}\n--- server log tail ---\n{server.log_tail(15)}")
        return {"error": msg[:2000]}


def _failed(server, res: dict) -> bool:
    """Exit code 1 when any server broke, or when ours gave a wrong answer."""
    cells = [v for v in res.values() if isinstance(v, dict)]
    ours = isinstance(server, servers.Ours)
    return "error" in res or any("error" in c or (ours and "wrong" in c) for c in cells)


def make_servers(workdir: Path, n: int, args) -> tuple[list[servers.Server], dict]:
    made, skipped = [], {}
    if not args.skip_ours:
        made.append(servers.Ours(workdir, chunk=args.chunk))
        if args.before:
            before = servers.Ours(workdir, label="ours-before", chunk=args.chunk)
            before.extra_env = {"PYTHONPATH": str(args.before_tree)}
            before.notes.append(f"ours-before: the code as of {args.before}")
            made.append(before)
        if args.db:
            made.append(servers.Ours(workdir, db_url=pg_reset(args.db), label="ours-pg", chunk=args.chunk))
    for p in args.peer_list:
        limit = args.peer_max.get(p, 0)
        if limit and n > limit:
            skipped[p] = f"too slow: only up to N={limit} (--peer-max-n) to keep the run short"
        else:
            made.append(PEERS[p](workdir))
    return made, skipped


def pg_reset(url: str, drop_only: bool = False) -> str:
    """Drop and re-create the database of a PostgreSQL URL; return the SQLAlchemy URL to use."""
    import psycopg
    from sqlalchemy.engine import make_url
    u = make_url(url)
    if u.drivername == "postgresql":
        try:
            import psycopg2  # noqa: F401
        except ImportError:   # only psycopg 3 is installed here
            u = u.set(drivername="postgresql+psycopg")
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{u.database}"')
    return u.render_as_string(hide_password=False)


def main(argv=None) -> int:
    args = parse_args(argv)
    results = {"meta": {
        "started": dt.datetime.now().isoformat(timespec="seconds"), "nproc": NPROC,
        "loadavg_start": loadavg(), "command": " ".join(["python bench/run.py", *sys.argv[1:]]),
        "reps": args.reps, "budget_s": args.budget, "poll_seconds": args.poll_seconds,
        "python": sys.version.split()[0], "notes": [
            "Radicale: multifilesystem storage, htpasswd plain Basic auth, owner_only rights, logging warning.",
            "Xandikos: runs without authentication (its Basic auth needs TLS); one git commit holds all events; "
            "--index-threshold 0 so its calendar-query index is built during the warm-up.",
            "Peers hold only the bench user's calendar; ours holds 5x N activities (4 other users).",
        ]}, "runs": []}
    log(f"nproc {NPROC}, load average {results['meta']['loadavg_start']}")
    before_dir = Path(tempfile.mkdtemp(prefix="crm-caldav-bench-before-")) if args.before else None
    if args.before:
        args.before_tree = before_tree(args.before, before_dir)
    failed = False
    try:
        for n in args.ns:
            t0 = time.perf_counter()
            log(f"=== N={n}: generating data")
            ds = datagen.generate(n, seed=args.seed)
            run = {"n": n, "crm_activities": len(ds.bench_events) + len(ds.other_events),
                   "loadavg_before": loadavg(), "servers": {}}
            results["runs"].append(run)
            tmp = Path(tempfile.mkdtemp(prefix=f"crm-caldav-bench-{n}-"))
            try:
                made, run["skipped"] = make_servers(tmp, n, args)
                for server in made:
                    res = bench_server(server, ds, args)
                    run["servers"][server.name] = res
                    failed |= _failed(server, res)
                for name in run["skipped"]:
                    run["servers"][name] = {}
            finally:
                if args.keep:
                    log(f"kept {tmp}")
                else:
                    servers.remove_tree(tmp)
            if args.db and not args.skip_ours:
                pg_reset(args.db, drop_only=True)
            run["loadavg_after"] = loadavg()
            run["seconds"] = round(time.perf_counter() - t0, 1)
            header, rows = report.table(run, args.reps)
            print(f"\nN = {n} events ({run['crm_activities']} CRM activities), load avg "
                  f"{run['loadavg_before']} -> {run['loadavg_after']}, nproc {NPROC}, "
                  f"{run['seconds']:.0f} s\n" + report.text_table(header, rows))
            for line in report.notes_lines(run):
                print("  " + line)
            print(flush=True)
            results["meta"]["loadavg_end"] = loadavg()
            report.write(results, Path(args.out), args.reps)
    finally:
        results["meta"]["loadavg_end"] = loadavg()
        report.write(results, Path(args.out), args.reps)
        if before_dir is not None:
            servers.remove_tree(before_dir)
    flat = report.flatness(results)
    if flat:
        print("\nGrowth with the calendar size (largest N over smallest N; 1.00x = flat)\n"
              + report.text_table(*flat) + "\n")
    print(report.LEGEND)
    log(f"load average at end {results['meta']['loadavg_end']}; results in {args.out}/latest.(json|md)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
