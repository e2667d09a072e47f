#!/usr/bin/env bash
# Compares syncd with vdirsyncer on the same work: two folders of .vcf
# contacts (vdirsyncer "filesystem" storages / syncd "vcarddir"
# connectors), 10,000 contacts on one side.
#   1. first sync (copies every contact to the empty side)
#   2. no-op sync (the first after the copy: syncd passes over the files
#      it wrote itself, named in its cursor)
#   2b. a second no-op sync
#   3. sync after editing 1% of the contacts on each side
# Prints wall time and peak RSS (GNU time) of each step and the ratio;
# with REPS=n the whole comparison runs n times (fresh folders each time)
# and the table shows the median of each figure.
#
# Each round also times the steps' file work alone (bench/vdirsyncer/floor:
# the same copies through a temporary file and a rename, made durable,
# with no parsing and no state): what the file system costs any tool on
# this machine, and so the most one tool can be faster than another here.
#
# Usage: [REPS=3] bench/vdirsyncer/run.sh [N]     (N contacts, default 10000)
# Needs: go, vdirsyncer, /usr/bin/time (GNU). WORK=dir keeps the files.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
N="${1:-10000}"
REPS="${REPS:-1}"
WORK="${WORK:-$(mktemp -d /tmp/syncd-vdir-bench.XXXXXX)}"
mkdir -p "$WORK"
command -v vdirsyncer >/dev/null || { echo "vdirsyncer not installed (apt-get install vdirsyncer)"; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time not installed (apt-get install time)"; exit 1; }

go build -o "$WORK/syncd" ./cmd/syncd
go build -o "$WORK/gen" ./bench/vdirsyncer/gen
go build -o "$WORK/floor" ./bench/vdirsyncer/floor

# measure NAME CMD...: runs CMD under GNU time, appends "NAME seconds KB".
measure() {
	local name=$1; shift
	/usr/bin/time -f "%e %M" -o "$WORK/time.$name" "$@" >"$WORK/log.$name" 2>&1 || {
		echo "$name failed:"; tail -20 "$WORK/log.$name"; exit 1; }
	read -r secs kb <"$WORK/time.$name"
	echo "$name $secs $kb" >>"$WORK/results"
}

: >"$WORK/results"

round() {
# --- vdirsyncer
V="$WORK/vdirsyncer"
rm -rf "$V"; mkdir -p "$V/A" "$V/B" "$V/status"
"$WORK/gen" -dir "$V/A" -n "$N" >/dev/null
cat >"$V/config" <<CFG
[general]
status_path = "$V/status/"

[pair contacts]
a = "contacts_a"
b = "contacts_b"
collections = null
conflict_resolution = "a wins"

[storage contacts_a]
type = "filesystem"
path = "$V/A/"
fileext = ".vcf"

[storage contacts_b]
type = "filesystem"
path = "$V/B/"
fileext = ".vcf"
CFG
yes | vdirsyncer -c "$V/config" discover >/dev/null 2>&1 || true
measure vdirsyncer.first vdirsyncer -c "$V/config" sync
measure vdirsyncer.noop vdirsyncer -c "$V/config" sync
measure vdirsyncer.noop2 vdirsyncer -c "$V/config" sync
"$WORK/gen" -dir "$V/A" -edit 1 -field TEL.cell -seed 7 >/dev/null
"$WORK/gen" -dir "$V/B" -edit 1 -field NOTE -seed 8 >/dev/null
measure vdirsyncer.edits vdirsyncer -c "$V/config" sync

# --- syncd
S="$WORK/syncd-run"
rm -rf "$S"; mkdir -p "$S/A" "$S/B"
"$WORK/gen" -dir "$S/A" -n "$N" >/dev/null
{
	echo "state = \"$S/state.db\""
	echo
	echo "[log]"
	echo "level = \"warn\""
	for side in A B; do
		cat <<CFG

[[connectors]]
name = "$side"
type = "vcarddir"

[connectors.options]
path = "$S/$side"
CFG
		cat bench/vdirsyncer/fields.toml
	done
} >"$S/config.toml"
measure syncd.first "$WORK/syncd" -config "$S/config.toml" --run-once
measure syncd.noop "$WORK/syncd" -config "$S/config.toml" --run-once
measure syncd.noop2 "$WORK/syncd" -config "$S/config.toml" --run-once
"$WORK/gen" -dir "$S/A" -edit 1 -field TEL.cell -seed 7 >/dev/null
"$WORK/gen" -dir "$S/B" -edit 1 -field NOTE -seed 8 >/dev/null
measure syncd.edits "$WORK/syncd" -config "$S/config.toml" --run-once

# --- the file work alone (a no-op's is the two listings)
F="$WORK/floor-run"
rm -rf "$F"; mkdir -p "$F/A" "$F/B"
"$WORK/gen" -dir "$F/A" -n "$N" >/dev/null
measure floor.first "$WORK/floor" -first "$F/A" "$F/B"
measure floor.noop "$WORK/floor" -noop "$F/A" "$F/B"
measure floor.noop2 "$WORK/floor" -noop "$F/A" "$F/B"
"$WORK/gen" -dir "$F/A" -edit 1 -field TEL.cell -seed 7 >/dev/null
"$WORK/gen" -dir "$F/B" -edit 1 -field NOTE -seed 8 >/dev/null
measure floor.edits "$WORK/floor" -edits "$F/A" "$F/B"
}

for rep in $(seq "$REPS"); do
	[ "$REPS" -gt 1 ] && echo "round $rep of $REPS"
	round
done

# Both tools must end with the same number of contacts on each side.
for d in "$V/A" "$V/B" "$S/A" "$S/B" "$F/A" "$F/B"; do
	printf '%s: %s files\n' "$d" "$(find "$d" -maxdepth 1 -name '*.vcf' | wc -l)"
done
echo
# median COLUMN NAME: the median of column 2 (seconds) or 3 (KB) of NAME.
median() {
	awk -v n="$2" '$1 == n { print $'"$1"' }' "$WORK/results" | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
[ "$REPS" -gt 1 ] && echo "medians of $REPS rounds (every figure in $WORK/results)"
printf '%-8s %14s %14s %8s   %14s %14s %8s   %14s %10s\n' step "vdirsyncer s" "syncd s" speedup "vdirsyncer MB" "syncd MB" "RSS x" "files alone s" "bound"
for step in first noop noop2 edits; do
	vs=$(median 2 "vdirsyncer.$step"); vk=$(median 3 "vdirsyncer.$step")
	ss=$(median 2 "syncd.$step"); sk=$(median 3 "syncd.$step")
	fs=$(median 2 "floor.$step")
	awk -v st="$step" -v vs="$vs" -v ss="$ss" -v vk="$vk" -v sk="$sk" -v fs="$fs" 'BEGIN {
		sp = (ss > 0) ? vs / ss : 0
		printf "%-8s %14.2f %14.2f %7.1fx   %14.1f %14.1f %7.2fx", st, vs, ss, sp, vk/1024, sk/1024, sk/vk
		if (fs > 0) printf "   %14.2f %9.1fx", fs, vs / fs
		printf "\n" }'
done
echo "(speedup = vdirsyncer time / syncd time; RSS x = syncd peak RSS / vdirsyncer peak RSS;"
echo " files alone = the step's file work without either tool; bound = vdirsyncer time / files alone,"
echo " the most any tool doing that file work can be faster than vdirsyncer here; files in $WORK)"
