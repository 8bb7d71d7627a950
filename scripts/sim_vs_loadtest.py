"""The tables of scripts/sim_vs_loadtest.sh.

`row NAME SEED BUYERS SIM_JSON RUN_JSON`: one JSON line with what both said about one run.
`table RUNS_JSONL MAX_DELTA`: one Markdown row per run, then one per setting: the mean
sell-out of each, the mean |Δ| over the paired runs (seed s of the model against seed s of
the real drop), the Δ of the two means, and the ETA range's coverage. Exits 1 when a
setting's mean |Δ| of sell-out exceeds MAX_DELTA (or a run has no sell-out to compare).
"""
import json
import sys


def row(name, seed, buyers, sim_path, run_path):
    sim = json.load(open(sim_path))
    try:
        run = json.load(open(run_path))
    except (OSError, ValueError):
        run = {}
    f = run.get("fairness") or {}
    r = f.get("report") or {}
    eta = f.get("eta") or {}
    print(json.dumps({
        "name": name, "seed": int(seed),
        "sim_sell_out": sim["sell_out_s"], "run_sell_out": r.get("sell_out_s"),
        "sim_p50": sim["wait_p50_s"], "run_p50": f.get("wait_p50_s"),
        "sim_tpu": sim["tokens_per_unit"], "run_tpu": r.get("tokens_per_unit"),
        "served": (run.get("outcomes") or {}).get("bought", 0) / int(buyers),
        "sim_served": sim["served_share"],
        "coverage": f.get("eta_coverage"), "early": eta.get("earlier_than_lo"),
        "late": eta.get("later_than_hi"), "width": eta.get("width_p50_s"),
        "failures": run.get("failures", ["no summary"]),
    }))


def delta(a, b):
    return None if not a or b is None else (b - a) / a


def pct(x):
    return "n/a" if x is None else f"{x * 100:+.1f} %"


def num(x, fmt="{:.3f}"):
    return "n/a" if x is None else fmt.format(x)


def table(path, max_delta):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    print("| setting | seed | sell-out sim / measured (s) | Δ | p50 wait sim / measured (s) "
          "| Δ | tokens per unit sim / measured | eta_coverage | earlier / later |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['name']} | {r['seed']} | {r['sim_sell_out']} / {num(r['run_sell_out'])} "
              f"| {pct(delta(r['sim_sell_out'], r['run_sell_out']))} "
              f"| {r['sim_p50']} / {num(r['run_p50'])} | {pct(delta(r['sim_p50'], r['run_p50']))} "
              f"| {r['sim_tpu']} / {r['run_tpu']} | {num(r['coverage'])} "
              f"| {pct(r['early'])} / {pct(r['late'])} |")
    print()
    print("| setting | runs | sell-out sim / measured, mean (s) | mean \\|Δ\\| | Δ of means "
          "| eta_coverage mean (min) | verdict |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for name in dict.fromkeys(r["name"] for r in runs):
        rs = [r for r in runs if r["name"] == name]
        ds = [delta(r["sim_sell_out"], r["run_sell_out"]) for r in rs]
        good = None not in ds
        mean_abs = sum(abs(d) for d in ds) / len(ds) if good else None
        mean = lambda k: sum(r[k] or 0 for r in rs) / len(rs)
        covs = [r["coverage"] or 0 for r in rs]
        passed = good and mean_abs <= max_delta
        ok &= passed
        print(f"| {name} | {len(rs)} | {mean('sim_sell_out'):.2f} / {mean('run_sell_out'):.2f} "
              f"| {num(mean_abs and mean_abs * 100, '{:.1f} %')} "
              f"| {pct(delta(mean('sim_sell_out'), mean('run_sell_out')))} "
              f"| {sum(covs) / len(covs):.3f} ({min(covs):.3f}) "
              f"| {'ok' if passed else f'OFF by more than {max_delta * 100:.0f} %'} |")
    return ok


if __name__ == "__main__":
    if sys.argv[1] == "row":
        row(*sys.argv[2:7])
    else:
        sys.exit(0 if table(sys.argv[2], float(sys.argv[3])) else 1)
