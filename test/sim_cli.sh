#!/usr/bin/env bash
# sim_cli.sh -- tests of the peertv-sim command line: options and exit
# statuses, scenario error messages, reproducible JSON and CSV output, the
# JSON fields and the CSV layout of docs/peertv-sim.1, and the bundled
# scenarios. `make check` exports top_srcdir and top_builddir; run by hand,
# they default to the source tree (..) and its build directory (../build).
# Prints one `ok N - ...` or `not ok N - ...` line per check and exits
# non-zero if any check failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=${top_srcdir:-$here/..}
top_builddir=${top_builddir:-$here/../build}
sim=$top_builddir/peertv-sim
scenarios=$top_srcdir/sim/scenarios

if [[ ! -x $sim ]]; then
  echo "sim_cli.sh: $sim not found or not executable (build it first)" >&2
  exit 99 # automake: hard error
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "sim_cli.sh: python3 is needed to compare the JSON output" >&2
  exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ptv_sim_cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
  n=$((n + 1))
  failed=$((failed + 1))
  echo "not ok $n - $1"
  shift
  local line
  for line in "$@"; do echo "#   $line"; done
}
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
  local desc=$1
  shift
  if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# run_sim OUT ERR ARGS...: runs peertv-sim, stdout to OUT, stderr to ERR,
# and leaves its exit status in $rc.
rc=0
run_sim() {
  local out=$1 err=$2
  shift 2
  rc=0
  "$sim" "$@" >"$out" 2>"$err" || rc=$?
}

# expect_rc DESC WANT [FILE...]: checks $rc, showing FILEs on failure.
expect_rc() {
  local desc=$1 want=$2
  shift 2
  if [[ $rc -eq $want ]]; then
    ok "$desc"
  else
    local f lines=("exit status $rc, expected $want")
    for f in "$@"; do lines+=("$f: $(head -c 400 "$f" | tr '\n' ' ')"); done
    not_ok "$desc" "${lines[@]}"
  fi
}

# ---- options and exit statuses --------------------------------------------

run_sim "$tmp/out" "$tmp/err" --help
expect_rc "--help exits 0" 0 "$tmp/err"
check "--help prints Usage on stdout" grep -q '^Usage: peertv-sim' "$tmp/out"

run_sim "$tmp/out" "$tmp/err" --version
expect_rc "--version exits 0" 0 "$tmp/err"
check "--version prints the program name and a version" \
  grep -Eq '^peertv-sim [0-9]+\.[0-9]+' "$tmp/out"

run_sim "$tmp/out" "$tmp/err"
expect_rc "no arguments exits 2" 2 "$tmp/err"
check "no arguments explains on stderr" test -s "$tmp/err"

run_sim "$tmp/out" "$tmp/err" --no-such-option "$scenarios/smoke.scn"
expect_rc "an unknown option exits 2" 2 "$tmp/err"
check "an unknown option names it on stderr" grep -q 'no-such-option' "$tmp/err"

run_sim "$tmp/out" "$tmp/err" "$scenarios/smoke.scn" "$scenarios/smoke.scn"
expect_rc "two scenario files exit 2" 2 "$tmp/err"

run_sim "$tmp/out" "$tmp/err" --seed -1 "$scenarios/smoke.scn"
expect_rc "a negative --seed exits 2" 2 "$tmp/err"

run_sim "$tmp/out" "$tmp/err" --seed 12x "$scenarios/smoke.scn"
expect_rc "a non-numeric --seed exits 2" 2 "$tmp/err"

run_sim "$tmp/out" "$tmp/err" --strategy tree "$scenarios/smoke.scn"
expect_rc "an unknown --strategy exits 2" 2 "$tmp/err"
check "an unknown --strategy is named on stderr" grep -q "tree" "$tmp/err"

run_sim "$tmp/out" "$tmp/err" --ch-param no_such=1 "$scenarios/smoke.scn"
expect_rc "an unknown --ch-param exits 2" 2 "$tmp/err"
check "an unknown --ch-param is named on stderr" grep -q "no_such" "$tmp/err"
run_sim "$tmp/out" "$tmp/err" --ch-param hold_s=-3 "$scenarios/smoke.scn"
expect_rc "a negative --ch-param value exits 2" 2 "$tmp/err"
run_sim "$tmp/out" "$tmp/err" --help
check "--help lists the Chandelier parameters" grep -q "slot_pct (default" "$tmp/out"

# ---- scenario errors ------------------------------------------------------

# A bad value on line 6, after a comment, a blank line and good statements.
cat >"$tmp/bad-unit.scn" <<'EOF'
# a scenario with a mistake
seed 1

stream rate=500kbps chunk=250ms
join 10 over 2s
loss 5 # the unit is missing
run 5s
EOF
run_sim "$tmp/out" "$tmp/err" "$tmp/bad-unit.scn"
expect_rc "a bad value exits 2" 2 "$tmp/err"
check "a bad value is reported at line 6" grep -Eq 'line 6([^0-9]|$)' "$tmp/err"
check "a bad value says what was expected" grep -q 'expected' "$tmp/err"
check "a bad value names the scenario file" grep -q 'bad-unit.scn' "$tmp/err"

# An unknown statement on line 3.
printf 'run 5s\njoin 3\nlos 1%%\n' >"$tmp/bad-stmt.scn"
run_sim "$tmp/out" "$tmp/err" "$tmp/bad-stmt.scn"
expect_rc "an unknown statement exits 2" 2 "$tmp/err"
check "an unknown statement is reported at line 3 with 'expected'" \
  grep -Eq 'line 3([^0-9]|$).*expected' "$tmp/err"

# A missing `run`: the scenario is incomplete rather than wrong on a line.
printf 'seed 1\njoin 3\n' >"$tmp/no-run.scn"
run_sim "$tmp/out" "$tmp/err" "$tmp/no-run.scn"
expect_rc "a scenario without run exits 2" 2 "$tmp/err"
check "a scenario without run mentions run" grep -q 'run' "$tmp/err"

run_sim "$tmp/out" "$tmp/err" "$tmp/does-not-exist.scn"
expect_rc "a nonexistent scenario file exits 2" 2 "$tmp/err"
check "a nonexistent scenario file is named on stderr" grep -q 'does-not-exist.scn' "$tmp/err"
check "a nonexistent scenario file gets a clear reason" \
  grep -Eqi 'no such file|cannot (read|open)' "$tmp/err"
check "a nonexistent scenario file prints nothing on stdout" test ! -s "$tmp/out"

# ---- reproducible output of the smoke scenario ----------------------------

smoke=$scenarios/smoke.scn
run_sim "$tmp/out1" "$tmp/err1" "$smoke" --json "$tmp/a.json" --csv "$tmp/a.csv" --quiet
rc1=$rc
run_sim "$tmp/out2" "$tmp/err2" "$smoke" --quiet --csv "$tmp/b.csv" --json "$tmp/b.json"
rc=$((rc1 > rc ? rc1 : rc))
expect_rc "smoke.scn runs twice with exit 0" 0 "$tmp/err1" "$tmp/err2"
check "--quiet prints nothing on stdout" test ! -s "$tmp/out1" -a ! -s "$tmp/out2"
check "both runs wrote JSON and CSV" test -s "$tmp/a.json" -a -s "$tmp/b.json" -a -s "$tmp/a.csv" -a -s "$tmp/b.csv"

# Prints the summary without the machine-dependent keys, keys sorted.
strip_json() {
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("wall_s", "peak_rss_mb", "events_per_s"):
    d.pop(k, None)
print(json.dumps(d, sort_keys=True, indent=1))
' "$1"
}
if strip_json "$tmp/a.json" >"$tmp/a.stripped" && strip_json "$tmp/b.json" >"$tmp/b.stripped" &&
  cmp -s "$tmp/a.stripped" "$tmp/b.stripped"; then
  ok "the two JSON summaries are identical but for wall_s, peak_rss_mb, events_per_s"
else
  not_ok "the two JSON summaries are identical but for wall_s, peak_rss_mb, events_per_s" \
    "$(diff "$tmp/a.stripped" "$tmp/b.stripped" 2>&1 | head -n 10 | tr '\n' ' ')"
fi
check "the two CSV series are byte-identical" cmp -s "$tmp/a.csv" "$tmp/b.csv"

# Chandelier is as deterministic, and --ch-param changes the run.
run_sim "$tmp/out1" "$tmp/err1" "$smoke" --strategy chandelier --quiet --csv "$tmp/ca.csv" --json "$tmp/ca.json"
rc1=$rc
run_sim "$tmp/out2" "$tmp/err2" "$smoke" --strategy chandelier --quiet --csv "$tmp/cb.csv" --json "$tmp/cb.json"
rc=$((rc1 > rc ? rc1 : rc))
expect_rc "smoke.scn under chandelier runs twice with exit 0" 0 "$tmp/err1" "$tmp/err2"
check "chandelier: the two CSV series are byte-identical" cmp -s "$tmp/ca.csv" "$tmp/cb.csv"
check "chandelier: the summary names the strategy" grep -q '"strategy": "chandelier"' "$tmp/ca.json"
run_sim "$tmp/out3" "$tmp/err3" "$smoke" --strategy chandelier --quiet --csv "$tmp/cc.csv" --ch-param slot_pct=50
check "--ch-param slot_pct=50 gives another run" test -s "$tmp/cc.csv" -a -n "$(cmp "$tmp/ca.csv" "$tmp/cc.csv" 2>&1)"

# Free-riders: about the share asked for claim K times their upload, and the
# summary reports the honest peers apart.
cat >"$tmp/fr.scn" <<'EOF'
seed 2
stream rate=500kbps chunk=250ms
source upload=2500kbps
peers upload=sepidar download=8Mbps
freeriders 30% claim=4x
join 200 over 5s
run 15s
EOF
run_sim "$tmp/out5" "$tmp/err5" "$tmp/fr.scn" --quiet --json "$tmp/fr.json" --peers "$tmp/fr.csv"
expect_rc "a scenario with free-riders runs" 0 "$tmp/err5"
check "about 30% of the peers claim 4x their upload, the others nothing" python3 -c '
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
fr = [r for r in rows if int(r["claim_kbps"]) > 0]
assert all(abs(int(r["claim_kbps"]) - 4 * int(r["upload_kbps"])) <= 2 for r in fr), "claim != 4x"
assert 0.2 < len(fr) / len(rows) < 0.4, len(fr)
assert "honest_share_ge_099" in json.load(open(sys.argv[2]))["continuity"]
' "$tmp/fr.csv" "$tmp/fr.json"

# Chandelier with free-riders: parents found failing are blocked for
# fail_block_s, so the parameter must change the run (it is read by the loop).
# The backlog bound is off here: with it, free-riders are seldom chosen and
# seldom found failing. Every failing parent is reported (suspect_deliv at
# deliv_bad), so that reports spread within the 15 s (10 s was enough
# until stripe peers started 3.5 s after choosing their start point).
fr_args="--ch-param settle_s=0 --ch-param grace_s=1 --ch-param suspect_deliv=32767"
run_sim "$tmp/out6" "$tmp/err6" "$tmp/fr.scn" --strategy chandelier --quiet --csv "$tmp/fb60.csv" \
  $fr_args --ch-param backlog_max_s=0
run_sim "$tmp/out7" "$tmp/err7" "$tmp/fr.scn" --strategy chandelier --quiet --csv "$tmp/fb1.csv" \
  $fr_args --ch-param backlog_max_s=0 --ch-param fail_block_s=0.5
check "--ch-param fail_block_s changes a free-rider run" test -s "$tmp/fb60.csv" -a -n "$(cmp "$tmp/fb60.csv" "$tmp/fb1.csv" 2>&1)"
# ... and so must the backlog bound (default 1 s) against none,
run_sim "$tmp/out8" "$tmp/err8" "$tmp/fr.scn" --strategy chandelier --quiet --csv "$tmp/bl1.csv" $fr_args
check "--ch-param backlog_max_s changes a free-rider run" test -s "$tmp/bl1.csv" -a -n "$(cmp "$tmp/fb60.csv" "$tmp/bl1.csv" 2>&1)"
# ... and the report threshold (default 0.35: fewer parents are accused).
run_sim "$tmp/out9" "$tmp/err9" "$tmp/fr.scn" --strategy chandelier --quiet --csv "$tmp/sd.csv" \
  --ch-param settle_s=0 --ch-param grace_s=1 --ch-param backlog_max_s=0
check "--ch-param suspect_deliv changes a free-rider run" test -s "$tmp/sd.csv" -a -n "$(cmp "$tmp/fb60.csv" "$tmp/sd.csv" 2>&1)"

# --peers: one line per peer that joined, consistent with the summary.
run_sim "$tmp/out4" "$tmp/err4" "$smoke" --quiet --json "$tmp/d.json" --peers "$tmp/peers.csv"
expect_rc "smoke.scn with --peers exits 0" 0 "$tmp/err4"
check "--peers writes the documented header" \
  test "$(head -n 1 "$tmp/peers.csv")" = "id,join_s,upload_kbps,nat,online_at_end,started,startup_s,chunks_due,chunks_missed,continuity,lag_s,stalls,stall_s,catchups,claim_kbps,continuity_tail"
check "--peers has one line per joined peer and matches the summary" python3 -c '
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
j = json.load(open(sys.argv[2]))
played = [r for r in rows if int(r["chunks_due"]) > 0]
mean = sum(float(r["continuity"]) for r in played) / len(played)
gone = sum(1 for r in rows if r["online_at_end"] == "0")
started = [r for r in rows if r["started"] == "1"]
stalls = sum(int(r["stalls"]) for r in started) / len(started)
# a pause is what the lag grows by: no peer paused longer than its lag,
# unless it caught up since (a catch-up jump takes lag back)
paused_ok = all(float(r["stall_s"]) <= float(r["lag_s"]) + 1e-3
                for r in started if int(r["catchups"]) == 0)
ok = (len(rows) == j["peers_joined"] and len(played) == j["peers_played"]
      and abs(mean - j["continuity"]["mean"]) < 1e-3 and gone > 0
      and abs(stalls - j["stalls"]["per_peer"]) < 1e-3 and paused_ok)
sys.exit(0 if ok else 1)' "$tmp/peers.csv" "$tmp/d.json"
check "--peers: the last-third continuity is given for the peers online at the end and matches the summary" python3 -c '
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
t = json.load(open(sys.argv[2]))["continuity"]["tail"]
tail = sorted(float(r["continuity_tail"]) for r in rows if r["continuity_tail"])
gone_blank = all(r["continuity_tail"] == "" for r in rows if r["online_at_end"] == "0")
share = sum(v >= 0.99 for v in tail) / len(tail)
# smoke.scn fails 30% of the peers at 40 s, inside the last third (from 40 s):
# the survivors miss more there than over their whole run
whole = [float(r["continuity"]) for r in rows if r["continuity_tail"]]
ok = (t["from_s"] == 40 and gone_blank and len(tail) > 50
      and abs(sum(tail) / len(tail) - t["mean"]) < 1e-3 and abs(share - t["share_ge_099"]) < 1e-3
      and sum(tail) / len(tail) < sum(whole) / len(whole))
sys.exit(0 if ok else 1)' "$tmp/peers.csv" "$tmp/d.json"

run_sim "$tmp/out3" "$tmp/err3" "$smoke" --seed 99 --json "$tmp/c.json" --csv "$tmp/c.csv" --quiet
expect_rc "smoke.scn with --seed 99 exits 0" 0 "$tmp/err3"
check "--seed 99 gives a different CSV series" bash -c '! cmp -s "$1" "$2"' _ "$tmp/a.csv" "$tmp/c.csv"
check "--seed 99 is recorded in the JSON" python3 -c '
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["seed"] == 99 else 1)' "$tmp/c.json"

# ---- the JSON fields of docs/peertv-sim.1 ---------------------------------

json_fields_msg=$(python3 -c '
import json, numbers, sys
d = json.load(open(sys.argv[1]))
fields = """peers_joined duration_s stream_kbps resource_index r_max_kbps lag_bound_s
continuity.mean continuity.share_ge_099 startup_s.p50 startup_s.p95 lag_s.p50
lag_s.p95 savings overhead partner_changes_per_peer_min events wall_s
peak_rss_mb stalls.per_peer stalls.seconds_mean stalls.seconds_p95
continuity.tail.from_s continuity.tail.mean continuity.tail.share_ge_099
continuity.tail.p10 continuity.tail.p50 continuity.tail.jain
dropped.nat dropped.loss dropped.partition dropped.tracker""".split()
bad = []
for f in fields:
    v = d
    for part in f.split("."):
        if not isinstance(v, dict) or part not in v:
            bad.append(f + " missing")
            break
        v = v[part]
    else:
        if isinstance(v, bool) or not isinstance(v, numbers.Number):
            bad.append(f + " is not a number")
print("; ".join(bad))
' "$tmp/a.json" 2>&1) || json_fields_msg="python3 failed: $json_fields_msg"
if [[ -z $json_fields_msg ]]; then
  ok "the JSON has every documented field, nested for dotted names"
else
  not_ok "the JSON has every documented field, nested for dotted names" "$json_fields_msg"
fi

json_values_msg=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
def want(cond, what):
    if not cond: bad.append(what)
want(d["peers_joined"] == 100, "peers_joined %r, smoke.scn joins 100" % d["peers_joined"])
want(d["duration_s"] == 60, "duration_s %r, smoke.scn runs 60s" % d["duration_s"])
want(d["stream_kbps"] == 500, "stream_kbps %r" % d["stream_kbps"])
want(isinstance(d["peers_joined"], int) and isinstance(d["events"], int),
     "peers_joined and events should be integers")
want(0 <= d["continuity"]["mean"] <= 1, "continuity.mean out of [0,1]")
want(0 <= d["continuity"]["share_ge_099"] <= 1, "continuity.share_ge_099 out of [0,1]")
want(d["startup_s"]["p50"] <= d["startup_s"]["p95"], "startup p50 > p95")
want(d["lag_s"]["p50"] <= d["lag_s"]["p95"], "lag p50 > p95")
want(d["r_max_kbps"] <= 2500 + 1e-6, "r_max_kbps above the source upload")
want(d["events"] > 0, "no events")
want(d["wall_s"] >= 0 and d["peak_rss_mb"] > 0, "wall_s/peak_rss_mb")
print("; ".join(bad))
' "$tmp/a.json" 2>&1) || json_values_msg="python3 failed: $json_values_msg"
if [[ -z $json_values_msg ]]; then
  ok "the JSON values are consistent with smoke.scn"
else
  not_ok "the JSON values are consistent with smoke.scn" "$json_values_msg"
fi

# ---- the CSV layout ---------------------------------------------------------

header='t_s,online,playing,continuity,share_ge_099,lag_p50_s,lag_p95_s,savings,source_kbps,peer_up_kbps,partner_changes'
first=$(head -n 1 "$tmp/a.csv")
if [[ $first == "$header" ]]; then
  ok "the CSV header is exactly the documented one"
else
  not_ok "the CSV header is exactly the documented one" "got: $first"
fi
rows=$(($(wc -l <"$tmp/a.csv") - 1))
if [[ $rows -eq 60 ]]; then
  ok "the CSV has one row per simulated second (60)"
else
  not_ok "the CSV has one row per simulated second (60)" "got $rows rows"
fi
check "the CSV rows are seconds 0..59 in order, 11 numeric fields each" awk -F, '
  NR == 1 { next }
  NF != 11 || $1 != NR - 2 { exit 1 }
  { for (i = 1; i <= NF; i++) if ($i !~ /^-?[0-9]+(\.[0-9]+)?$/) exit 1 }
' "$tmp/a.csv"
# smoke.scn: 100 peers join over 10 s and 30% fail at 40 s.
check "the CSV online column follows smoke.scn (100 after the joins, 70 after the failure)" awk -F, '
  NR == 1 { next }
  $1 >= 10 && $1 <= 38 && $2 != 100 { exit 1 }
  $1 >= 40 && $2 != 70 { exit 1 }
' "$tmp/a.csv"

# --json - writes the summary to stdout.
printf 'seed 2\njoin 5\nrun 3s\n' >"$tmp/tiny.scn"
run_sim "$tmp/out" "$tmp/err" "$tmp/tiny.scn" --json - --quiet
expect_rc "--json - exits 0" 0 "$tmp/err"
check "--json - prints the JSON summary on stdout" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if d["peers_joined"] == 5 and d["duration_s"] == 3 else 1)' "$tmp/out"

# An unwritable CSV path is a runtime failure (exit 1), not a crash.
run_sim "$tmp/out" "$tmp/err" "$tmp/tiny.scn" --csv "$tmp/no-such-dir/x.csv" --quiet
expect_rc "an unwritable --csv path exits 1" 1 "$tmp/err"
check "an unwritable --csv path is named on stderr" grep -q 'no-such-dir/x.csv' "$tmp/err"

# Without --quiet and without a terminal: the human summary on stdout.
run_sim "$tmp/out" "$tmp/err" "$tmp/tiny.scn"
expect_rc "a plain run exits 0" 0 "$tmp/err"
check "a plain run prints the human summary" grep -q '^PeerTV simulation: 5 peers' "$tmp/out"

# ---- the bundled example --------------------------------------------------

# example.scn runs for 600 s with 2,000 peers; a copy cut to 30 s still
# parses every statement (its file: path resolves through the data fallback).
sed 's/^run .*/run 30s/' "$scenarios/example.scn" >"$tmp/example.scn"
check "the example copy has its run line cut to 30 s" grep -qx 'run 30s' "$tmp/example.scn"
run_sim "$tmp/out" "$tmp/err" "$tmp/example.scn" --quiet --csv "$tmp/ex.csv"
expect_rc "sim/scenarios/example.scn (run 30s) parses and runs" 0 "$tmp/err"
rows=$(($(wc -l <"$tmp/ex.csv" 2>/dev/null || echo 1) - 1))
if [[ $rows -eq 30 ]]; then
  ok "the example copy gives 30 CSV rows"
else
  not_ok "the example copy gives 30 CSV rows" "got $rows rows"
fi

# PTV_SIM_WIN: a line per second in the window, each peer whose stripe
# parent crashed with 5 or more under it, loops with the guard off, and the
# run itself unchanged by watching it.
cat >"$tmp/win.scn" <<'EOF'
stream rate=500kbps chunk=250ms
source upload=2500kbps
peers upload=sepidar download=8Mbps
latency uniform 10ms 150ms
strategy chandelier
join 200 over 5s
at 30s fail 50%
run 36s
EOF
PTV_SIM_WIN=0:29:34 run_sim "$tmp/out" "$tmp/werr" "$tmp/win.scn" --quiet --seed 1 --json "$tmp/w1.json"
expect_rc "PTV_SIM_WIN=0:29:34 runs" 0
secs=$(grep -o '^win t=[0-9]* stripe 0 reach' "$tmp/werr" | cut -d' ' -f2 | tr '\n' ' ')
check "PTV_SIM_WIN prints seconds 29 to 34, once each (got: $secs)" test "$secs" = "t=29 t=30 t=31 t=32 t=33 t=34 "
check "PTV_SIM_WIN shows peers whose stripe-0 parent crashed" grep -q '^win   root .* subtree [0-9]* depth' "$tmp/werr"
run_sim "$tmp/out" "$tmp/err" "$tmp/win.scn" --quiet --seed 1 --json "$tmp/w2.json"
if strip_json "$tmp/w1.json" >"$tmp/w1.s" && strip_json "$tmp/w2.json" >"$tmp/w2.s" && cmp -s "$tmp/w1.s" "$tmp/w2.s"; then
  ok "PTV_SIM_WIN does not change the run"
else
  not_ok "PTV_SIM_WIN does not change the run" "$(diff "$tmp/w1.s" "$tmp/w2.s" 2>&1 | head -n 6 | tr '\n' ' ')"
fi
# (Which seeds loop without the guard moves with any change to the engine:
# any of twelve will do.)
looped=""
for seed in 1 2 3 4 5 6 7 8 9 10 11 12; do
  PTV_SIM_WIN=99:0:36 run_sim "$tmp/out" "$tmp/werr" "$tmp/win.scn" --quiet --seed $seed \
    --ch-param loop_guard_s=0 --ch-param loop_depth=0
  if grep -q '^win t=[0-9]* on a loop: [1-9]' "$tmp/werr"; then looped=$seed; break; fi
done
check "PTV_SIM_WIN=99 counts peers on a loop, the loop guard off (seed ${looped:-none of 1-12})" test -n "$looped"

# Every bundled scenario parses: `run` cut to 1 s so that each is quick.
for scn in "$scenarios"/*.scn; do
  name=$(basename "$scn")
  sed 's/^run .*/run 1s/' "$scn" >"$tmp/$name"
  run_sim "$tmp/out" "$tmp/err" "$tmp/$name" --quiet
  expect_rc "bundled $name parses and starts" 0 "$tmp/err"
done

echo "1..$n"
if [[ $failed -gt 0 ]]; then
  echo "# $failed of $n checks failed" >&2
  exit 1
fi
exit 0
