# shellcheck shell=bash
# Helpers shared by scripts/test, scripts/demo and friends. Source it:
#   . "$(dirname "$0")/lib.sh"
# It sets PTV_ROOT (the repository root) and cds there.

PTV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$PTV_ROOT" || exit 1

# configure arguments of the main build/ tree, shared by scripts/test and
# scripts/demo so that running one after the other does not reconfigure.
# shellcheck disable=SC2034  # used by the scripts that source this
PTV_BUILD_ARGS=(--enable-werror)

PTV_STEP=""

ptv_die() {
  echo "error: $*" >&2
  exit 1
}

# ptv_step NAME: announce a step; a failure after it names the step.
ptv_step() {
  PTV_STEP=$1
  printf '\n==> %s\n' "$1"
}

# ptv_on_exit [STATUS]: the EXIT trap (a script with its own trap calls it
# with the status it saw)
ptv_on_exit() {
  local rc=${1:-$?}
  if [ "$rc" -ne 0 ] && [ -n "$PTV_STEP" ]; then
    printf '\n******************************************************\n' >&2
    printf '*** FAILED: %s (exit %s)\n' "$PTV_STEP" "$rc" >&2
    printf '******************************************************\n' >&2
  fi
}
trap ptv_on_exit EXIT

# Package names from scripts/debian-packages.txt, comments stripped.
ptv_packages() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PTV_ROOT/scripts/debian-packages.txt" | grep -v '^$'
}

# Installs the missing Debian packages (apt-get update only if some are).
# PTV_SKIP_DEPS=1 skips this, e.g. on a system that is not Debian.
ptv_install_deps() {
  [ "${PTV_SKIP_DEPS:-0}" = 1 ] && return 0
  command -v dpkg-query >/dev/null ||
    ptv_die "dpkg-query not found: not a Debian system? Install the packages in scripts/debian-packages.txt by hand and set PTV_SKIP_DEPS=1"
  local pkg missing=()
  while read -r pkg; do
    dpkg-query -W -f='${db:Status-Abbrev}\n' "$pkg" 2>/dev/null | grep -q '^ii' ||
      missing+=("$pkg")
  done < <(ptv_packages)
  [ "${#missing[@]}" -eq 0 ] && return 0

  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || ptv_die "need root or sudo to install: ${missing[*]}"
    sudo=(sudo)
  fi
  echo "Installing missing Debian packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
    ptv_die "apt-get update failed (network? apt sources?)"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    ptv_die "apt-get install failed for: ${missing[*]}"
}

# Runs autoreconf when ./configure is missing or older than its inputs.
ptv_bootstrap() {
  local f stale=0
  if [ ! -x configure ] || [ ! -f Makefile.in ]; then
    stale=1
  else
    for f in configure.ac Makefile.am m4/*.m4; do
      [ -e "$f" ] && [ "$f" -nt configure ] && stale=1
    done
  fi
  [ "$stale" = 1 ] || return 0
  [ ! -e config.status ] ||
    ptv_die "the source tree is configured in place; run 'make distclean' here first"
  mkdir -p m4
  echo "autoreconf -fi"
  autoreconf -fi
}

# ptv_configure BUILDDIR [ARGS...]: out-of-tree configure, re-run only when
# ARGS changed or BUILDDIR has no config.status.
ptv_configure() {
  local dir=$1 want
  shift
  want=$(printf '%q ' "$@")
  mkdir -p "$dir"
  if [ -f "$dir/config.status" ] && [ -f "$dir/.ptv-configure-args" ] &&
     [ "$(cat "$dir/.ptv-configure-args")" = "$want" ]; then
    return 0
  fi
  echo "configure $* (in $dir/)"
  rm -f "$dir/.ptv-configure-args"
  (cd "$dir" && "$PTV_ROOT/configure" "$@")
  printf '%s\n' "$want" > "$dir/.ptv-configure-args"
}

# ptv_build BUILDDIR [TARGETS...]
ptv_build() {
  local dir=$1
  shift
  make -C "$dir" -j"$(nproc)" "$@"
}

# ptv_probe_rmax SIM STRATEGY PREFIX SEED...
# Prints "SEED R_MAX" (kbps) per seed for the steady scenario, each read
# off a run to the end of its joins (60 s; r_max does not depend on the
# stream rate, but on the upload capacities the seed draws: 684-729 kbps
# over seeds 1-24, so each seed's rates are fractions of its own r_max).
# Two probes at a time; the probe's copy of the scenario sits next to it
# (its upload file is named relative to it); summaries in PREFIX-SEED.json.
ptv_probe_rmax() {
  local sim=$1 strategy=$2 prefix=$3
  shift 3
  local scn=$PTV_ROOT/sim/scenarios/.rmax-probe.scn rc=0 sd
  sed -e 's/^run .*/run 60s/' "$PTV_ROOT/sim/scenarios/steady.scn" >"$scn"
  printf '%s\n' "$@" | xargs -P 2 -I{} "$sim" "$scn" --quiet --seed {} --strategy "$strategy" \
    --json "$prefix-{}.json" >/dev/null || rc=$?
  rm -f "$scn"
  [ "$rc" -eq 0 ] || ptv_die "the r_max probe failed (exit $rc)"
  for sd in "$@"; do
    python3 -c 'import json,sys; print(sys.argv[2], json.load(open(sys.argv[1]))["r_max_kbps"])' \
      "$prefix-$sd.json" "$sd"
  done
}

# ptv_plot_changes PNG TITLE MESH_CSV CHANDELIER_CSV
# Plots a simulator CSV pair's partner changes per peer per minute over 10 s
# windows (60 x changes / peer-seconds online), mesh against chandelier.
ptv_plot_changes() {
  local png=$1 title=$2 mesh=$3 ch=$4
  local f
  for f in "$mesh" "$ch"; do
    awk -F, 'NR > 1 { s += $11; n += $2 } NR > 1 && (NR - 1) % 10 == 0 { print $1 "," (n ? 60 * s / n : 0); s = 0; n = 0 }' \
      "$f" >"$f.changes"
  done
  gnuplot <<GP
set terminal pngcairo size 960,540 noenhanced font ',10'
set datafile separator ','
set output '$png'
set title '$title: partner changes per peer per minute (10 s windows)'
set xlabel 'time (s)'
set ylabel 'changes per peer per minute'
plot '$mesh.changes' using 1:2 with lines lw 1.5 title 'mesh', \
     '$ch.changes' using 1:2 with lines lw 1.5 title 'chandelier'
GP
}
