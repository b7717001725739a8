#!/usr/bin/env python3
"""Compare `nbdinfo --json URI` (libnbd, the oracle) with `unbd info --json URI`.

Usage: compare_info.py NBDINFO.json UNBD.json [--size=N]
Prints every disagreeing field and exits 1 if there is one. --size=N replaces
nbdinfo's export-size (nbd-server 3.24 answers NBD_OPT_INFO, which nbdinfo
uses, with size 0; the size after NBD_OPT_GO comes from nbdinfo --size instead).
"""
import json
import sys

nbdinfo = json.load(open(sys.argv[1]))
unbd = json.load(open(sys.argv[2]))
exports = nbdinfo.get("exports", [])
if len(exports) != 1:
    sys.exit(f"expected one export from nbdinfo, got {len(exports)}")
ref = exports[0]
for arg in sys.argv[3:]:
    if arg.startswith("--size="):
        ref["export-size"] = int(arg[len("--size="):])

# nbdinfo field -> unbd field
FIELDS = {
    "export-name": "export_name",
    "export-size": "size_bytes",
    "is_read_only": "read_only",
    "is_rotational": "rotational",
    "can_flush": "can_flush",
    "can_fua": "can_fua",
    "can_trim": "can_trim",
    "can_zero": "can_write_zeroes",
    "can_fast_zero": "can_fast_zero",
    "can_cache": "can_cache",
    "can_df": "can_df",
    "can_multi_conn": "can_multi_conn",
}
bad = []
compared = 0
for theirs, ours in FIELDS.items():
    if theirs not in ref:
        bad.append(f"nbdinfo lacks {theirs}")
        continue
    compared += 1
    if ref[theirs] != unbd.get(ours, "<missing>"):
        bad.append(f"{theirs}={ref[theirs]!r} but {ours}={unbd.get(ours, '<missing>')!r}")

compared += 1
if nbdinfo.get("structured") != unbd.get("structured_replies"):
    bad.append(f"structured={nbdinfo.get('structured')!r} but structured_replies={unbd.get('structured_replies')!r}")

# Block sizes appear in nbdinfo only when the server advertised them.
for suffix, ours in (("minimum", "block_size_min"), ("preferred", "block_size_preferred"),
                     ("maximum", "block_size_max")):
    theirs = "block_size_" + suffix
    compared += 1
    if theirs in ref:
        if ref[theirs] != unbd.get(ours) or not unbd.get("block_size_advertised"):
            bad.append(f"{theirs}={ref[theirs]} but {ours}={unbd.get(ours)} "
                       f"(advertised={unbd.get('block_size_advertised')})")
    elif unbd.get("block_size_advertised"):
        bad.append(f"nbdinfo saw no block sizes but unbd says they were advertised")

compared += 1
if ref.get("description") != unbd.get("description"):
    bad.append(f"description={ref.get('description')!r} but {unbd.get('description')!r}")

for b in bad:
    print("MISMATCH:", b, file=sys.stderr)
if bad:
    sys.exit(1)
print(f"unbd and nbdinfo agree on {compared} fields")
