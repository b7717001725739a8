#!/usr/bin/env python3
"""The table of tests/bench/kernel-vs-unbd.sh, and issue 10's targets.

Input lines: "ROUND CLIENT WORKLOAD IOPS MiB/s P50_US LAT_P50_US" (fio's clat
and lat p50; attach rows carry the time to a usable device, in us, as P50_US,
and no LAT_P50_US). Per (client, workload): the mean
over the rounds and the spread (half the range, % of the mean); ratios to the
kernel client are the mean of the per-round ratios (rounds are paired: every
client ran the workload in the same round), with their own spread.

clat against lat: fio's clat starts when the submitting io_uring_enter
returns. nbd.ko sends the request inside that call (its queue_rq), so its
clat leaves the send out; a ublk request's send is in the daemon, inside
clat. lat (submission included) is the like-for-like latency; issue 10's
QD1 target is stated in clat, so both are shown.
"""
import sys
from collections import defaultdict

# workload -> (what is measured, higher is better)
METRIC = defaultdict(lambda: ("IOPS", True))
METRIC.update({"4k-randread-qd1": ("p50 us", False), "4k-randwrite-qd1": ("p50 us", False),
               "attach": ("ms", False)})
THROUGHPUT = ["4k-randread", "4k-randwrite", "1m-read", "1m-write"]

rows = defaultdict(dict)  # (client, workload) -> round -> (iops, mibs, p50, n, lat_p50)
order = []
clients = []  # as they first appear, the kernel client last
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) not in (6, 7):
        continue
    rnd, client, wl = f[0], f[1], f[2]
    iops, mibs, p50 = map(float, f[3:6])
    lat = float(f[6]) if len(f) == 7 else 0.0
    if wl not in order:
        order.append(wl)
    if client not in clients:
        clients.append(client)
    if wl == "attach":  # several timings per round: keep their mean
        prev = rows[client, wl].get(rnd)
        n = prev[3] + 1 if prev else 1
        p50 = ((prev[2] * prev[3]) if prev else 0) + p50
        rows[client, wl][rnd] = (0, 0, p50 / n, n, 0.0)
    else:
        rows[client, wl][rnd] = (iops, mibs, p50, 1, lat)


def value(client, wl, rnd, lat=False):
    iops, _, p50, _, lat_p50 = rows[client, wl][rnd]
    if lat:
        return lat_p50
    if wl == "attach":
        return p50 / 1000
    return p50 if METRIC[wl][0] == "p50 us" else iops


def stats(xs):
    mean = sum(xs) / len(xs)
    spread = (max(xs) - min(xs)) / 2
    return mean, spread


def ratio(client, wl, peer, lat=False):
    rounds = sorted(set(rows[client, wl]) & set(rows[peer, wl]))
    rs = [value(client, wl, r, lat) / value(peer, wl, r, lat) for r in rounds if value(peer, wl, r, lat) > 0]
    return stats(rs) if rs else (float("nan"), 0.0)


print(f"{'workload':<17} {'client':<14} {'metric':<7} {'mean':>9} {'spread':>7} {'MiB/s':>8} {'p50 us':>8} {'lat p50':>8} {'vs kernel':>14}")
clients.sort(key=lambda c: c == "kernel")
for wl in order:
    metric, _ = METRIC[wl]
    for client in clients:
        if not rows[client, wl]:
            continue
        rnds = sorted(rows[client, wl])
        mean, spread = stats([value(client, wl, r) for r in rnds])
        mibs = sum(rows[client, wl][r][1] for r in rnds) / len(rnds)
        p50 = sum(rows[client, wl][r][2] for r in rnds) / len(rnds)
        lat = sum(rows[client, wl][r][4] for r in rnds) / len(rnds)
        rm, rs = ratio(client, wl, "kernel")
        rtxt = f"{rm:.2f}x ±{rs:.2f}" if client != "kernel" else "-"
        extra = f"{mibs:8.1f} {p50:8.0f} {lat:8.0f}" if wl != "attach" else f"{'-':>8} {'-':>8} {'-':>8}"
        print(f"{wl:<17} {client:<14} {metric:<7} {mean:9.1f} {100 * spread / mean if mean else 0:6.1f}% {extra} {rtxt:>14}")

print()
print("issue 10 targets (unbd-zc; ratio = mean of per-round ratios)")
targets = []
for wl in THROUGHPUT:
    targets.append((f"{wl}: zero copy >= 1.3x kernel IOPS", "unbd-zc", wl, "kernel", 1.3, True))
for wl in THROUGHPUT:
    targets.append((f"{wl}: zero copy >= copy mode IOPS", "unbd-zc", wl, "unbd-copy", 1.0, True))
for wl in ["4k-randread-qd1", "4k-randwrite-qd1"]:
    targets.append((f"{wl}: zero copy p50 <= 0.8x kernel", "unbd-zc", wl, "kernel", 0.8, False))
targets.append(("attach: zero copy <= 0.5x nbd-client's time to a usable device", "unbd-zc", "attach", "kernel", 0.5, False))
for text, client, wl, peer, goal, higher in targets:
    if not rows[client, wl] or not rows[peer, wl]:
        print(f"  {'NOT RUN':<8} {text}")
        continue
    rm, rs = ratio(client, wl, peer)
    met = rm >= goal if higher else rm <= goal
    print(f"  {'met' if met else 'MISSED':<8} {text}: {rm:.2f}x ±{rs:.2f}")

print()
print("latency with submission included (fio lat p50; nbd.ko's send is in it, see the top of kernel_table.py)")
for wl in ["4k-randread-qd1", "4k-randwrite-qd1"]:
    rm, rs = ratio("unbd-zc", wl, "kernel", lat=True)  # nan when not measured
    print(f"  {wl}: zero copy lat p50 / kernel's: " + ("not measured" if rm != rm else f"{rm:.2f}x ±{rs:.2f}"))
