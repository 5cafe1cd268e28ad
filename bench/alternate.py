"""Ours as of a commit against ours now, alternating: small differences that run.py's medians
cannot tell from the machine's moods.

    python bench/alternate.py --before 9ce67e6 --n 2000 --rounds 8

bench/run.py times each server's scenarios in one block, a minute or more apart: on a busy
2-core machine, a scenario of a few milliseconds then differs by 20-30 % between two blocks of
the same code. Here both servers run at once, side by side (each on its own database, loaded
by its own code: a newer schema would not load in the older code), and every round times
each scenario on both, in alternating order, with the scenario functions of
bench/scenarios.py (S1, S2, S3, S4a, S4b, S5; S1 once per round, the others `--reps` times).
What the machine does to one, it does to both within a second.

Prints, per scenario, the median of each side and now / before (below 1.00 = faster now).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen  # noqa: E402
import scenarios  # noqa: E402
import servers  # noqa: E402
from dav import Dav  # noqa: E402
from run import before_tree, loadavg  # noqa: E402

TIMED = [("S1", scenarios.s1_first_sync, 1), ("S3", scenarios.s3_poll, None),
         ("S4a", scenarios.s4a_query_etags, None), ("S4b", scenarios.s4b_query_data, None),
         ("S2", scenarios.s2_one_change, None), ("S5", scenarios.s5_create, None)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, metavar="GIT_REF", help="the commit to compare with")
    ap.add_argument("--n", type=int, default=2000, help="events in the bench user's calendar")
    ap.add_argument("--rounds", type=int, default=8, help="rounds (each times every scenario on both)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per round of the scenarios but S1")
    ap.add_argument("--seed", type=int, default=20261121)
    return ap.parse_args(argv)


def timed(target: scenarios.Target, function) -> float:
    """Seconds the scenario spent waiting for the server (bench/dav.py's ``elapsed``)."""
    before = target.timed.elapsed
    if function is scenarios.s3_poll:  # an up-to-date token first, untimed: S2 and S5 change the calendar
        _, target.token = target.prep.sync_collection(target.cal, target.token)
    function(target)
    return target.timed.elapsed - before


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ds = datagen.generate(args.n, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="crm-caldav-alternate-") as tmp:
        work = Path(tmp)
        before = servers.Ours(work, label="before")
        before.extra_env = {"PYTHONPATH": str(before_tree(args.before, work))}
        now = servers.Ours(work, label="now")
        sides = [before, now]
        targets = []
        try:
            for server in sides:
                print(f"{server.name}: loading N={args.n}", flush=True)
                server.load(ds)
                server.start()
                target = scenarios.Target(server, ds, Dav(server.base_url, server.auth),
                                          Dav(server.base_url, server.auth))
                for _, function, _ in TIMED:
                    timed(target, function)  # warm-up, discarded
                targets.append(target)
            print(f"load average {loadavg()}; {args.rounds} rounds", flush=True)
            samples: dict[str, list[list[float]]] = {label: [[], []] for label, _, _ in TIMED}
            for round_number in range(args.rounds):
                order = (0, 1) if round_number % 2 == 0 else (1, 0)
                for label, function, reps in TIMED:
                    for side in order:
                        for _ in range(reps or args.reps):
                            samples[label][side].append(timed(targets[side], function))
            print(f"load average {loadavg()}")
            print(f"{'scenario':9s} {'before (ms)':>12s} {'now (ms)':>10s} {'now / before':>13s}  samples")
            for label, _, _ in TIMED:
                old, new = (statistics.median(values) * 1000 for values in samples[label])
                print(f"{label:9s} {old:12.2f} {new:10.2f} {new / old:12.2f}x  {len(samples[label][0])} each")
        finally:
            for target in targets:
                target.timed.close()
                target.prep.close()
            for server in sides:
                server.stop()


if __name__ == "__main__":
    main()
