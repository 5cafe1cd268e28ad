"""Tables (console + markdown) and the JSON file for the results."""
from __future__ import annotations

import json
from pathlib import Path

# row key, label, unit, higher_is_better
ROWS = [
    ("load", "load data", "s", False),
    ("S1", "S1 first sync: PROPFIND home + sync-collection + multiget x50", "ms", False),
    ("S2", "S2 sync after 1 change: sync-collection + multiget", "ms", False),
    ("S3", "S3 no-change poll: PROPFIND ctag + sync-collection", "ms", False),
    ("S4a", "S4a calendar-query 1 month, etags only", "ms", False),
    ("S4b", "S4b calendar-query 1 month, with calendar-data", "ms", False),
    ("S5", "S5 PUT new event (If-None-Match: *)", "ms", False),
    ("S6_1", "S6 polls/s, 1 client", "polls/s", True),
    ("S6_4", "S6 polls/s, 4 clients", "polls/s", True),
    ("S6w_4", "S6 polls/s, 4 clients, server --workers", "polls/s", True),
    ("rss_all", "peak RSS, S1-S5", "MiB", False),
    ("rss", "peak RSS during S6 polls", "MiB", False),
    ("rssw", "peak RSS, server --workers (all processes)", "MiB", False),
]


def _value(cell) -> float | None:
    if isinstance(cell, dict):
        return cell.get("median")
    return cell if isinstance(cell, (int, float)) else None


def _fmt_num(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_cell(cell, reps: int) -> str:
    if cell is None:
        return "–"
    if isinstance(cell, str):
        return cell
    if isinstance(cell, dict) and "error" in cell:
        return "FAILED"
    v = _value(cell)
    text = _fmt_num(v)
    if isinstance(cell, dict):
        if cell.get("reps", reps) < reps and cell.get("unit") == "ms":
            text += f" ({cell['reps']}r)"
        if cell.get("errors"):
            text += f" [{cell['errors']} err]"
        if cell.get("wrong"):
            text += " (!)"
    return text


def ratio(peer, ours, higher_is_better: bool) -> str:
    """> 1 means ours is better (faster, more polls, less memory)."""
    p, o = _value(peer), _value(ours)
    if not p or not o or (isinstance(peer, dict) and "error" in peer) or (isinstance(ours, dict) and "error" in ours):
        return "–"
    r = o / p if higher_is_better else p / o
    return f"{r:.1f}x" if r >= 1 else f"{r:.2f}x"


def table(run: dict, reps: int) -> tuple[list[str], list[list[str]]]:
    servers = list(run["servers"])
    ours = servers[0] if servers and servers[0].startswith("ours") else None
    # ours-before (--before) is compared with ours like a peer: > 1 = ours got better
    peers = [s for s in servers if not s.startswith("ours") or s == "ours-before"]
    header = ["scenario", *servers] + ([f"{p} vs {ours}" for p in peers] if ours else [])
    rows = []
    for key, label, unit, hib in ROWS:
        cells = [run["servers"][s].get(key) for s in servers]
        if all(c is None for c in cells):
            continue
        row = [f"{label} ({unit})", *(fmt_cell(c, reps) for c in cells)]
        if ours:
            row += [ratio(run["servers"][p].get(key), run["servers"][ours].get(key), hib) for p in peers]
        rows.append(row)
    return header, rows


def text_table(header, rows) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def md_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


LEGEND = ("Medians of the timed reps (first run discarded as warm-up). \"peer vs ours\" > 1 means "
          "ours is better by that factor (faster, more polls/s, less memory); < 1 means ours is worse. "
          "(kr) = only k timed reps because one rep was slow (time budget); [k err] = failed polls; "
          "(!) = timed, but the answer failed its check (see the notes).")


def notes_lines(run: dict) -> list[str]:
    lines = []
    for name, res in run["servers"].items():
        for note in res.get("notes", []):
            lines.append(f"{name}: {note}")
        for key, cell in res.items():
            if isinstance(cell, dict) and "error" in cell:
                lines.append(f"{name} {key} FAILED: {cell['error']}")
            elif isinstance(cell, dict) and cell.get("wrong"):
                lines.append(f"{name} {key} (!) WRONG ANSWER: {cell['wrong']}")
            elif isinstance(cell, dict) and cell.get("errors"):
                lines.append(f"{name} {key}: {cell['errors']} failed polls, first: {cell['first_error']}")
    for name, why in run.get("skipped", {}).items():
        lines.append(f"{name}: skipped ({why})")
    return lines


FLAT_ROWS = ("S2", "S3", "S5", "rss")  # issue 4: these must not grow with the calendar


def flatness(results: dict) -> tuple[list[str], list[list[str]]] | None:
    """Each server's figure at the largest N over the same at the smallest N (1.0 = flat)."""
    runs = sorted(results["runs"], key=lambda run: run["n"])
    if len(runs) < 2:
        return None
    small, large = runs[0], runs[-1]
    servers = [s for s in large["servers"] if s in small["servers"]]
    header = ["scenario", *(f"{s}: N={large['n']} / N={small['n']}" for s in servers)]
    rows = []
    for key, label, unit, _ in ROWS:
        if key not in FLAT_ROWS:
            continue
        row = [f"{label} ({unit})"]
        for server in servers:
            a, b = _value(large["servers"][server].get(key)), _value(small["servers"][server].get(key))
            row.append(f"{a / b:.2f}x" if a and b else "–")
        rows.append(row)
    return header, rows


def write(results: dict, out_dir: Path, reps: int):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=1, default=str))
    meta = results["meta"]
    md = [f"# crm-caldav benchmark ({meta['started']})", "",
          f"Machine: {meta['nproc']} CPUs, load average at start {meta['loadavg_start']}, "
          f"at end {meta.get('loadavg_end', '?')}. Requested reps: {reps}. "
          f"Command: `{meta['command']}`", "", LEGEND, ""]
    for run in results["runs"]:
        md += [f"## N = {run['n']} events ({run['crm_activities']} CRM activities in total)", "",
               md_table(*table(run, reps)), ""]
        md += [f"- {line}" for line in notes_lines(run)] + [""]
    flat = flatness(results)
    if flat:
        md += ["## Growth with the calendar size (largest N over smallest N; 1.00x = flat)", "",
               md_table(*flat), ""]
    md += [f"- {note}" for note in meta.get("notes", [])]
    (out_dir / "latest.md").write_text("\n".join(md) + "\n")
