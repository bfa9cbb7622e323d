#!/usr/bin/env python3
"""report.py - markdown report of a bench/run.sh results directory (stdlib only).

  report.py RESULTS_DIR > RESULTS_DIR/summary.md

Reads RESULTS_DIR/sequence-N*.json (the order in which run.sh ran the servers for each N)
and the harness JSON files they name. Ratios are computed pair by pair: each peer is compared
with the mean of the Portico rounds run immediately before and after it (same N, same run),
so slow drift of the machine (load from other work) cancels to first order.

Ratio convention: "x" = how many times better Portico is, i.e. peer time / Portico time for
times and Portico rate / peer rate for rates; below 1 the peer is better.
"""
import glob
import json
import os
import sys

HARNESS = os.environ.get("BENCH_HARNESS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")
sys.path.insert(0, HARNESS)
import carddav_bench as cb  # noqa: E402

g = cb.g


def peak_rss_mib(r):
    v = [s.get("vmhwm_kb_sum", 0) for s in (r.get("server_proc") or {}).values() if s]
    return max(v) / 1024 if v else None


def ms(x):
    return x * 1000 if x is not None else None


# (key, title, extractor, higher_is_better, decimals)
METRICS = [
    ("seed", "seed PUT/s", lambda r: g(r, "phases", "seed", "puts_per_s"), True, 0),
    ("init", "initial sync s", lambda r: g(r, "phases", "initial", "wall_s"), False, 3),
    ("init_cps", "initial contacts/s", lambda r: g(r, "phases", "initial", "contacts_per_s"), True, 0),
    ("incr_sc", "incr. sync-coll ms", lambda r: ms(g(r, "phases", "incremental", "sync_collection", "wall_s")), False, 1),
    ("incr_ed", "incr. etag-diff ms", lambda r: ms(g(r, "phases", "incremental", "etag_diff", "wall_s")), False, 1),
    ("get1", "GET c1 req/s", lambda r: g(r, "phases", "get", "c1", "req_s"), True, 0),
    ("get16", "GET c16 req/s", lambda r: g(r, "phases", "get", "c16", "req_s"), True, 0),
    ("get16p99", "GET c16 p99 ms", lambda r: g(r, "phases", "get", "c16", "p99_ms"), False, 2),
    ("put1", "PUT c1 req/s", lambda r: g(r, "phases", "put", "c1", "req_s"), True, 0),
    ("put16", "PUT c16 req/s", lambda r: g(r, "phases", "put", "c16", "req_s"), True, 0),
    ("put16p99", "PUT c16 p99 ms", lambda r: g(r, "phases", "put", "c16", "p99_ms"), False, 1),
    ("rss", "peak RSS MiB", peak_rss_mib, False, 1),
    ("cpu_init", "server CPU s, initial (3 reps)", lambda r: g(r, "phase_timings", "initial", "server_cpu_s"), False, 2),
]


def fmt(v, nd):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def mean(vals):
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def dnf(r, entry):
    """Why a run has no figures, or None."""
    if r is None:
        return entry.get("note") or "no result"
    seed = g(r, "phases", "seed")
    if seed and seed.get("complete") is False:
        got = (seed.get("created") or 0) + (seed.get("already_present") or 0)
        return f"did not finish: {got:,}/{g(r, 'meta', 'n'):,} contacts loaded by PUT in {seed.get('wall_s', 0) / 60:.0f} min"
    if entry.get("note"):
        return entry["note"]
    return None


def main(argv):
    d = argv[0] if argv else "."
    seqs = []
    for p in glob.glob(os.path.join(d, "sequence-N*.json")):
        s = load(p)
        if s:
            seqs.append(s)
    seqs.sort(key=lambda s: (s["n"], s.get("tag") or ""))
    out = []
    env = load(os.path.join(d, "env.json")) or {}
    if env:
        out.append(f"Machine: {env.get('cpu', '?')}, {env.get('cpus', '?')} CPUs, {env.get('mem', '?')}; "
                   f"{env.get('kernel', '')}. Portico {env.get('portico_commit', '?')}; harness {env.get('harness', '?')}; "
                   f"peers {env.get('peers', '?')}.")
        out.append("")
    for s in seqs:
        n = s["n"]
        runs = s["runs"]
        for e in runs:
            e["res"] = load(os.path.join(d, e["file"])) if e.get("file") else None
        seed_runs = [e for e in runs if e["role"] == "portico-seed"]
        seed_res = seed_runs[0]["res"] if seed_runs else None
        rounds = [i for i, e in enumerate(runs) if e["role"] == "portico"]
        tag = f", run '{s['tag']}'" if s.get("tag") else ""
        out.append(f"### N = {n:,}{tag}  ({s.get('date', '')})")
        out.append("")
        # ---- ratio table
        head = ["peer (run order)", "Portico rounds"]
        for key, title, fn, hib, nd in METRICS:
            head.append(title)
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, e in enumerate(runs):
            if e["role"] != "peer":
                continue
            before = [j for j in rounds if j < i][-1:]
            after = [j for j in rounds if j > i][:1]
            pair = before + after
            why = dnf(e["res"], e)
            row = [f"{e['label']} (#{i + 1})", "+".join(runs[j]["label"].split()[-1] for j in pair) or "-"]
            for key, title, fn, hib, nd in METRICS:
                if key == "seed":
                    pv = fn(seed_res) if seed_res else None
                else:
                    pv = mean([fn(runs[j]["res"]) for j in pair if runs[j]["res"]])
                if why and not (key == "seed" and e["res"] and g(e["res"], "phases", "seed", "puts_per_s")):
                    row.append("DNF" if key == "init" else "-")
                    continue
                qv = fn(e["res"]) if e["res"] else None
                if "preload" in e["label"] and key == "seed":
                    row.append("n/a (preloaded)")
                    continue
                if e.get("static") and key in ("seed", "incr_sc", "incr_ed", "put1", "put16", "put16p99"):
                    row.append("n/a")
                    continue
                if pv is None or qv is None:
                    row.append(f"{fmt(pv, nd)} / {fmt(qv, nd)}")
                    continue
                if hib:
                    ratio = pv / qv if qv else None
                else:
                    ratio = qv / pv if pv else None
                row.append(f"{fmt(pv, nd)} / {fmt(qv, nd)} = **{ratio:.1f}x**" if ratio is not None else
                           f"{fmt(pv, nd)} / {fmt(qv, nd)}")
            lines.append("| " + " | ".join(row) + " |")
            if why:
                lines.append(f"| ↳ {e['label']}: {why} | | " + " | ".join("" for _ in METRICS) + " |")
        out.append("Portico vs peer, pair by pair (each cell: Portico / peer = x times better for Portico):")
        out.append("")
        out.extend(lines)
        out.append("")
        # ---- the initial sync by the native client (bench/sync-client), pair by pair
        for e in runs:
            e["native"] = load(os.path.join(d, e["file"].replace(".json", "-native.json"))) if e.get("file") else None
        if any(e.get("native") for e in runs):
            nat = lambda e, k: g(e.get("native") or {}, "initial", k)  # noqa: E731
            nlines = ["| peer (run order) | Portico rounds | wall s | contacts/s | server CPU s per sync | "
                      "client CPU s per sync | cards |", "|---|---|---|---|---|---|---|"]
            for i, e in enumerate(runs):
                if e["role"] != "peer" or not e.get("native"):
                    continue
                pair = [j for j in rounds if j < i][-1:] + [j for j in rounds if j > i][:1]
                pair = [j for j in pair if runs[j].get("native")]

                def both(k, nd, hib):
                    pv = mean([nat(runs[j], k) for j in pair])
                    qv = nat(e, k)
                    if pv is None or qv is None:
                        return f"{fmt(pv, nd)} / {fmt(qv, nd)}"
                    ratio = (pv / qv if qv else None) if hib else (qv / pv if pv else None)
                    return f"{fmt(pv, nd)} / {fmt(qv, nd)}" + (f" = **{ratio:.1f}x**" if ratio is not None else "")
                nlines.append(f"| {e['label']} (#{i + 1}) | " +
                              ("+".join(runs[j]["label"].split()[-1] for j in pair) or "-") + " | " +
                              " | ".join([both("wall_s", 4, False), both("contacts_per_s", 0, True),
                                          both("server_cpu_s", 3, False), both("client_cpu_s", 3, False),
                                          f"{fmt(mean([nat(runs[j], 'contacts_received') for j in pair]), 0)} / "
                                          f"{fmt(nat(e, 'contacts_received'), 0)}"]) + " |")
            out.append("Initial sync by the native client (`bench/sync-client`: same requests, XML parsed in Rust, "
                       "median of 3; Portico / peer = x times better for Portico):")
            out.append("")
            out.extend(nlines)
            out.append("")
        # ---- raw harness table, in run order
        res_all = []
        for e in runs:
            r = e["res"]
            if r is None:
                continue
            r = json.loads(json.dumps(r))
            r["meta"]["label"] = f"#{runs.index(e) + 1} {e['label']}"
            if e["role"] == "portico" and seed_res and not g(r, "phases", "seed"):
                r["phases"]["seed"] = g(seed_res, "phases", "seed")
            res_all.append(r)
        out.append("Every run, in order (harness `table`; Portico rounds show the PUT seed of the seeding run):")
        out.append("")
        out.append(cb.table(res_all))
        out.append("")
        # ---- Portico-only facts
        facts = []
        if seed_res:
            sd = g(seed_res, "phases", "seed") or {}
            facts.append(f"load by PUT (If-None-Match: *, one client, each write fsynced): {fmt(sd.get('puts_per_s'), 0)} PUT/s, "
                         f"p50 {fmt(sd.get('p50_ms'), 2)} ms, p99 {fmt(sd.get('p99_ms'), 2)} ms, {fmt(sd.get('wall_s'), 1)} s in all")
        for e in runs:
            if e.get("import"):
                im = e["import"]
                facts.append(f"load by admin bulk import ({im.get('requests')} requests of {im.get('chunk_lines')} JSON lines): "
                             f"{fmt(im.get('contacts_per_s'), 0)} contacts/s, {fmt(im.get('wall_s'), 2)} s, server CPU {fmt(im.get('server_cpu_s'), 2)} s")
        colds = [(e["label"], e.get("cold_start_s"), e.get("cold_method")) for e in runs if e.get("cold_start_s") is not None]
        if colds:
            old_method = any(m is None for _, _, m in colds)
            facts.append("cold start to first answered PROPFIND (store holding N contacts): " +
                         ", ".join(f"{lab.split()[-1]} {v:.3f} s" for lab, v, _ in colds) +
                         (" (upper bounds: this run's poller started after a 0.1 s port poll and its own Python "
                          "start-up; see cold-start.json for the launch-to-ready time measured with the poller "
                          "already running)" if old_method else ""))
        fid = [g(e["res"], "fidelity") for e in runs if e["role"] == "portico" and e["res"]]
        if fid and fid[0]:
            f0 = fid[0]
            facts.append(f"round-trip fidelity (GET vs bytes PUT, 20 cards): {f0.get('byte_identical')} byte-identical, "
                         f"{f0.get('same_lines_unordered')} same lines, {f0.get('differs')} differ")
        ng = [e for e in runs if e.get("static")]
        if ng and ng[0].get("capture"):
            c = ng[0]["capture"]
            facts.append(f"nginx served Portico's own bytes: {c.get('sync_bytes', 0) / 1e6:.2f} MB of PROPFIND + multiget bodies "
                         f"and {c.get('cards')} .vcf files captured from Portico")
        loads = [f"#{i + 1} {e['label']}: {e.get('load', '?')}" for i, e in enumerate(runs)]
        if facts:
            out.append("Portico:")
            out.append("")
            out.extend(f"- {x}" for x in facts)
            out.append("")
        out.append("Load average (1/5/15 min) when each run started: " + "; ".join(loads))
        out.append("")
    cs = load(os.path.join(d, "cold-start.json"))
    if cs:
        out.append(f"### Cold start ({cs.get('date')})")
        out.append("")
        out.append(f"{cs.get('what')}: " + ", ".join(f"{v:.3f} s" for v in cs.get("seconds", [])) + f". {cs.get('method')}")
        out.append("")
    mo = load(os.path.join(d, "many-orgs.json"))
    if mo:
        out.append(f"### Many organizations: {g(mo, 'meta', 'orgs'):,} orgs x {g(mo, 'meta', 'contacts_per_org')} contacts "
                   f"({g(mo, 'meta', 'started')}, load {mo.get('load', '?')})")
        out.append("")
        st = mo.get("setup") or {}
        out.append(f"Setup through the admin API: {st.get('orgs')} orgs in {st.get('wall_s')} s "
                   f"(p50 create {g(st, 'create_org', 'p50_ms')} ms, install {g(st, 'install', 'p50_ms')} ms, "
                   f"import of 100 {g(st, 'import_100', 'p50_ms')} ms).")
        out.append("")
        out.append(f"| workload | {g(mo, 'meta', 'orgs'):,} different orgs | one org, same count | tenancy overhead |")
        out.append("|---|---|---|---|")

        def cell(x):
            if not x:
                return "-"
            s = f"p50 {x.get('p50_ms')} ms, p99 {x.get('p99_ms')} ms"
            if x.get("req_s") is not None:
                s += f", {x['req_s']:,.0f} req/s"
            return s
        out.append(f"| first listing (sync-collection, empty token, 100 members) | {cell(mo.get('first_listing'))} | - | - |")
        out.append(f"| poll, no change (sync-collection with token), 1 client | {cell(mo.get('poll_orgs_c1'))} | "
                   f"{cell(mo.get('poll_one_org_c1'))} | p50 {g(mo, 'tenancy_overhead_ms', 'poll_p50')} ms |")
        cks = [k for k in mo if k.startswith("poll_orgs_c") and k != "poll_orgs_c1"]
        for k in cks:
            c = k.rsplit("c", 1)[1]
            out.append(f"| poll, {c} clients in parallel | {cell(mo.get(k))} | {cell(mo.get('poll_one_org_c' + c))} | - |")
        out.append(f"| incremental sync after 1 change (PROPFIND D0 + sync-collection + multiget) | "
                   f"{cell(g(mo, 'sync_orgs', 'sync'))} | {cell(g(mo, 'sync_one_org', 'sync'))} | "
                   f"p50 {g(mo, 'tenancy_overhead_ms', 'sync_p50')} ms |")
        sp = mo.get("server_proc") or {}
        rss = [(k, v.get("vmrss_kb_sum", 0) / 1024, v.get("vmhwm_kb_sum", 0) / 1024) for k, v in sp.items() if v]
        if rss:
            out.append("")
            out.append("Server memory (RSS / peak): " + ", ".join(f"{k} {a:.0f}/{b:.0f} MiB" for k, a, b in rss) +
                       (f"; data dir {mo['datadir_kib'] / 1024:.0f} MiB" if mo.get("datadir_kib") else ""))
        if mo.get("errors"):
            out.append("")
            out.append("Errors: " + "; ".join(str(e) for e in mo["errors"][:5]))
        out.append("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
