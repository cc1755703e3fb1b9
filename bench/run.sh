#!/usr/bin/env bash
# bench/run.sh is `make bench`: it measures workerpool side by side with a
# spawn-limit baseline (bench/spawn.c), xargs -P and GNU parallel, then its
# memory and its handling of one large output, runs the Go benchmarks, and
# prints a markdown report that it also writes to BENCHMARKS.md.
#
# It installs what it needs from Debian's packages when missing (GNU
# parallel, hyperfine, jq, gcc, GNU time). Timings are hyperfine medians over
# BENCH_RUNS rounds; each round runs every contender once, one after the
# other, so that a change in the machine's load hits all of them alike.
# Peak RSS comes from GNU time (%M). Inputs live in a temporary directory.
#
# Knobs (environment):
#   BENCH_TASKS=3000           tasks per throughput run
#   BENCH_RUNS=5               rounds of the timed runs (median reported)
#   BENCH_PARALLEL_TASKS=1000  tasks per GNU parallel run (it is much slower;
#                              it is compared by tasks/s)
#   BENCH_PARALLEL_RUNS=1      rounds that include GNU parallel
#   BENCH_MEM_SMALL=2000       tasks of the small memory run
#   BENCH_MEM_LARGE=100000     tasks of the large memory run
#   BENCH_ORDERED_TASKS=5000   100 KB tasks after the slow head (--ordered run)
#   BENCH_BIG_MIB=200          MiB printed by the one large task
#   BENCH_GO_COUNT=1           -count of the Go benchmarks
#   BENCH_OUT=BENCHMARKS.md    where the report goes (relative to the repo)
#   BENCH_REMOTE=1             0 leaves out the "## Many machines" section
#                              (bench/remote.sh, with its BENCH_REMOTE_* knobs)
#   BENCH_WIDE=1               0 leaves out the "## Wide pools" section
#                              (bench/wide.sh, with its BENCH_WIDE_* knobs)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

tasks=${BENCH_TASKS:-3000}
runs=${BENCH_RUNS:-5}
par_tasks=${BENCH_PARALLEL_TASKS:-1000}
par_runs=${BENCH_PARALLEL_RUNS:-1}
mem_small=${BENCH_MEM_SMALL:-2000}
mem_large=${BENCH_MEM_LARGE:-100000}
ordered_tasks=${BENCH_ORDERED_TASKS:-5000}
big_mib=${BENCH_BIG_MIB:-200}
go_count=${BENCH_GO_COUNT:-1}
out_file=${BENCH_OUT:-BENCHMARKS.md}

log() { printf 'bench: %s\n' "$*" >&2; }

# shellcheck source=bench/tools.sh
source bench/tools.sh
ensure_tools parallel:parallel hyperfine:hyperfine jq:jq gcc:gcc /usr/bin/time:time xargs:findutils
command -v go >/dev/null || { log "go is needed to build workerpool"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wpbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/hf"

log "building workerpool and the spawn baseline in $tmp"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && commit+=" with uncommitted changes"
go build -o "$tmp/workerpool" .
gcc -O2 -Wall -pthread -o "$tmp/spawn" bench/spawn.c
wp=$tmp/workerpool
spawn=$tmp/spawn

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)

# --- inputs ---------------------------------------------------------------
log "generating inputs"
repeat() { yes "$2" | head -n "$1" || true; }
repeat "$tasks" '{"command":"/bin/true"}' >"$tmp/true.ndjson"
repeat "$tasks" '{"command":"/bin/echo","args":["hello"]}' >"$tmp/echo.ndjson"
repeat "$tasks" hello >"$tmp/lines"
repeat "$par_tasks" hello >"$tmp/lines-par"
repeat "$mem_small" '{"command":"/bin/true"}' >"$tmp/mem-small.ndjson"
repeat "$mem_large" '{"command":"/bin/true"}' >"$tmp/mem-large.ndjson"
text='The quick brown fox jumps over the lazy dog, 0123456789 times; then it rests under the old oak tree.'
{ yes "$text" || true; } | head -c 102400 >"$tmp/100k.txt"
{
	echo '{"command":"sleep","args":["5"]}'
	repeat "$ordered_tasks" "{\"command\":\"/bin/cat\",\"args\":[\"$tmp/100k.txt\"]}"
} >"$tmp/ordered.ndjson"
{ yes "$text" || true; } | head -c $((big_mib << 20)) >"$tmp/big.txt"
echo "{\"command\":\"/bin/cat\",\"args\":[\"$tmp/big.txt\"]}" >"$tmp/big.ndjson"

# --- timed runs -------------------------------------------------------------
# Each group is a set of commands timed side by side; times.tsv collects
# "group<TAB>name<TAB>seconds" for every round.
declare -A group_cmds

add_throughput_group() { # workload threads program-and-args
	local w=$1 t=$2 prog=$3
	group_cmds[$w-$t]=$(
		printf '%s\n' \
			"workerpool	$wp --ndjson -t $t <$tmp/$w.ndjson >/dev/null" \
			"baseline	$spawn $tasks $t $prog >/dev/null" \
			"xargs	xargs -P $t -n 1 -a $tmp/lines ${prog% hello} >/dev/null" \
			"parallel	parallel --will-cite -j $t ${prog% hello} :::: $tmp/lines-par >/dev/null"
	)
}
add_throughput_group true 2 /bin/true
add_throughput_group true 8 /bin/true
add_throughput_group echo 2 '/bin/echo hello'
add_throughput_group echo 8 '/bin/echo hello'
group_cmds[big]=$(
	printf '%s\n' \
		"workerpool	$wp --ndjson <$tmp/big.ndjson >/dev/null" \
		"pipe	cat $tmp/big.txt | cat >/dev/null"
)
groups=(true-2 true-8 echo-2 echo-8 big)

# Round r starts with the group's (r-1)th command, so that no contender
# always runs right after the same one.
for ((round = 1; round <= runs; round++)); do
	for g in "${groups[@]}"; do
		entries=()
		while IFS=$'\t' read -r name cmd; do
			[[ $name == parallel && $round -gt $par_runs ]] && continue
			entries+=("$name"$'\t'"$cmd")
		done <<<"${group_cmds[$g]}"
		args=()
		for ((i = 0; i < ${#entries[@]}; i++)); do
			e=${entries[(i + round - 1) % ${#entries[@]}]}
			args+=(-n "${e%%$'\t'*}" "${e#*$'\t'}")
		done
		log "round $round/$runs: $g (${#entries[@]} commands)"
		hyperfine --runs 1 --style none --export-json "$tmp/hf/$g-$round.json" "${args[@]}" >>"$tmp/hyperfine.log" 2>&1 ||
			{ cat "$tmp/hyperfine.log" >&2; exit 1; }
		jq -r --arg g "$g" --arg r "$round" '.results[] | [$g, .command, .times[0], .user, .system, $r] | @tsv' \
			"$tmp/hf/$g-$round.json" >>"$tmp/times.tsv"
	done
done

# median GROUP NAME [COLUMN] prints the median wall time in seconds, or of
# another column of times.tsv (6 is user + system CPU seconds).
median() {
	awk -F'\t' -v g="$1" -v n="$2" -v c="${3:-3}" '$1 == g && $2 == n { print (c == 6 ? $4 + $5 : $c) }' "$tmp/times.tsv" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# --- memory -----------------------------------------------------------------
# rss_run NAME INPUT ARGS... runs workerpool under GNU time, its results
# counted by wc; it records peak RSS (KiB), wall seconds and result lines.
declare -A rss wall lines
rss_run() {
	local name=$1 input=$2
	shift 2
	log "peak RSS: $name"
	lines[$name]=$({ /usr/bin/time -f '%M %e' -o "$tmp/time-$name" "$wp" "$@" <"$input"; } | wc -l)
	read -r rss[$name] wall[$name] <"$tmp/time-$name"
}
rss_run small "$tmp/mem-small.ndjson" --ndjson
rss_run large "$tmp/mem-large.ndjson" --ndjson
rss_run ordered "$tmp/ordered.ndjson" --ndjson --ordered
log "peak RSS: big"
big_bytes=$({ /usr/bin/time -f '%M %e' -o "$tmp/time-big" "$wp" --ndjson <"$tmp/big.ndjson"; } | wc -c)
read -r rss[big] wall[big] <"$tmp/time-big"
for name in small large ordered; do
	want=$mem_small
	[[ $name == large ]] && want=$mem_large
	[[ $name == ordered ]] && want=$((ordered_tasks + 1))
	((lines[$name] == want)) || { log "$name: $((lines[$name])) results for $want tasks"; exit 1; }
done

# --- Go benchmarks ----------------------------------------------------------
log "go test -bench (decode, encode, dispatch, pipeline)"
go test -run '^$' -bench . -benchmem -count "$go_count" ./decode ./encode ./dispatch ./pipeline >"$tmp/gobench.txt"

finished=$(date +%s)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------
mib() { calc '%.1f' "$1 / 1024"; }
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo '**missed**'; fi; }

report() {
	local cpu
	cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (bench/run.sh). Throughput and large-output times are hyperfine"
	echo "medians over $runs rounds (GNU parallel: $par_runs), each round running every contender once;"
	echo "peak RSS is GNU time's %M. 1 MiB = 1024 KiB; the issue's \"MB\" limits are read as MiB."
	echo
	echo "| machine | |"
	echo "|---|---|"
	echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
	echo "| workerpool | $commit |"
	echo "| nproc | $(nproc) |"
	echo "| CPU | ${cpu:-unknown} |"
	echo "| kernel | $(uname -sr) |"
	echo "| memory | $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
	echo "| Go | $(go version | cut -d' ' -f3-) |"
	echo "| tools | $(hyperfine --version), $(parallel --version | head -1), $(xargs --version | head -1), $(gcc --version | head -1) |"
	echo "| load average | $load_before before, $load_after after ($((finished - started)) s) |"
	echo
	echo "## Throughput"
	echo
	echo "$tasks tasks per run ($par_tasks for GNU parallel, compared by tasks/s), NDJSON (or the"
	echo "children's output) to /dev/null. workerpool captures stdout and stderr and writes one JSON"
	echo "line per task; the baseline (bench/spawn.c: P threads, each looping posix_spawn, drain a stdout pipe, waitpid)"
	echo "does nothing else; xargs runs \`-n 1\` and captures nothing; GNU parallel runs each task through a shell"
	echo "and buffers its output. Ratios are of time per task: above 1 means slower than workerpool,"
	echo "except in the first ratio column."
	echo
	echo "| workload | -t | workerpool | spawn baseline | xargs -P | GNU parallel | workerpool ÷ baseline | xargs ÷ workerpool | parallel ÷ workerpool |"
	echo "|---|---|---|---|---|---|---|---|---|"
	local g w t s_wp s_base s_x s_par r_wp r_base r_x r_par
	for g in true-2 true-8 echo-2 echo-8; do
		w=${g%-*} t=${g#*-}
		s_wp=$(median "$g" workerpool) s_base=$(median "$g" baseline) s_x=$(median "$g" xargs) s_par=$(median "$g" parallel)
		r_wp=$(calc '%.0f' "$tasks / $s_wp") r_base=$(calc '%.0f' "$tasks / $s_base")
		r_x=$(calc '%.0f' "$tasks / $s_x") r_par=$(calc '%.0f' "$par_tasks / $s_par")
		[[ $w == true ]] && w='`/bin/true`' || w='`echo hello`'
		printf '| %s | %s | %s/s (%.2f s) | %s/s (%.2f s) | %s/s (%.2f s) | %s/s (%.2f s) | %s | %s | %s |\n' \
			"$w" "$t" "$r_wp" "$s_wp" "$r_base" "$s_base" "$r_x" "$s_x" "$r_par" "$s_par" \
			"$(calc '%.2fx' "$s_wp / $s_base")" "$(calc '%.2fx' "$s_x / $s_wp")" \
			"$(calc '%.2fx' "($s_par / $par_tasks) / ($s_wp / $tasks)")"
	done
	echo
	echo "CPU time per task (user + system, children included), which other load on the machine"
	echo "disturbs less than wall time; the last column is what workerpool adds to each task:"
	echo
	echo "| workload | -t | workerpool | spawn baseline | xargs -P | GNU parallel | workerpool − baseline |"
	echo "|---|---|---|---|---|---|---|"
	local c_wp c_base c_x c_par
	for g in true-2 true-8 echo-2 echo-8; do
		w=${g%-*} t=${g#*-}
		[[ $w == true ]] && w='`/bin/true`' || w='`echo hello`'
		c_wp=$(median "$g" workerpool 6) c_base=$(median "$g" baseline 6) c_x=$(median "$g" xargs 6) c_par=$(median "$g" parallel 6)
		printf '| %s | %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %+.2f ms |\n' "$w" "$t" \
			"$(calc '%f' "$c_wp * 1000 / $tasks")" "$(calc '%f' "$c_base * 1000 / $tasks")" \
			"$(calc '%f' "$c_x * 1000 / $tasks")" "$(calc '%f' "$c_par * 1000 / $par_tasks")" \
			"$(calc '%f' "($c_wp - $c_base) * 1000 / $tasks")"
	done
	echo
	echo "## Memory"
	echo
	echo "| run | tasks | peak RSS | wall |"
	echo "|---|---|---|---|"
	printf '| `--ndjson`, `/bin/true` | %s | %s MiB | %.1f s |\n' "$mem_small" "$(mib "${rss[small]}")" "${wall[small]}"
	printf '| `--ndjson`, `/bin/true` | %s | %s MiB | %.1f s |\n' "$mem_large" "$(mib "${rss[large]}")" "${wall[large]}"
	printf '| `--ndjson --ordered`, `sleep 5` first, then tasks printing 100 KiB | 1 + %s | %s MiB | %.1f s |\n' \
		"$ordered_tasks" "$(mib "${rss[ordered]}")" "${wall[ordered]}"
	echo
	echo "## Large output"
	echo
	local s_big s_pipe
	s_big=$(median big workerpool) s_pipe=$(median big pipe)
	echo "One task printing $big_mib MiB of text; workerpool writes it as one NDJSON line ($big_bytes bytes)."
	echo
	echo "| run | wall (median) | peak RSS |"
	echo "|---|---|---|"
	printf '| `cat big.txt \| cat` | %.2f s | |\n' "$s_pipe"
	printf '| workerpool `--ndjson` | %.2f s (%s the pipe) | %s MiB (%s the output) |\n' "$s_big" \
		"$(calc '%.2fx' "$s_big / $s_pipe")" "$(mib "${rss[big]}")" "$(calc '%.2fx' "${rss[big]} / ($big_mib * 1024)")"
	echo
	echo "## Targets"
	echo
	local wp2 base2 x2 par2 wpe2 basee2 xe2
	wp2=$(median true-2 workerpool) base2=$(median true-2 baseline) x2=$(median true-2 xargs) par2=$(median true-2 parallel)
	wpe2=$(median echo-2 workerpool) basee2=$(median echo-2 baseline) xe2=$(median echo-2 xargs)
	local per5k
	per5k=$(calc '%.2f' "$wp2 / $tasks * 5000")
	echo "| target | measured | |"
	echo "|---|---|---|"
	# Against the threaded C spawner: wall at most 1.15x, CPU (user +
	# system, children included) at most 1.10x, at -t 2 and -t 8.
	local t wt bt we be cwt cbt cwe cbe
	for t in 2 8; do
		wt=$(median "true-$t" workerpool) bt=$(median "true-$t" baseline) we=$(median "echo-$t" workerpool) be=$(median "echo-$t" baseline)
		cwt=$(median "true-$t" workerpool 6) cbt=$(median "true-$t" baseline 6) cwe=$(median "echo-$t" workerpool 6) cbe=$(median "echo-$t" baseline 6)
		printf '| `-t %s`: wall within 1.15x of the spawn baseline | `/bin/true` %s, `echo hello` %s | %s |\n' "$t" \
			"$(calc '%.2fx' "$wt / $bt")" "$(calc '%.2fx' "$we / $be")" "$(met "$wt / $bt <= 1.15 && $we / $be <= 1.15")"
		printf '| `-t %s`: CPU within 1.10x of the spawn baseline | `/bin/true` %s, `echo hello` %s | %s |\n' "$t" \
			"$(calc '%.2fx' "$cwt / $cbt")" "$(calc '%.2fx' "$cwe / $cbe")" "$(met "$cwt / $cbt <= 1.10 && $cwe / $cbe <= 1.10")"
	done
	printf '| `-t 2`: faster than `xargs -P` | xargs takes %s (`/bin/true`), %s (`echo hello`) | %s |\n' \
		"$(calc '%.2fx' "$x2 / $wp2")" "$(calc '%.2fx' "$xe2 / $wpe2")" "$(met "$x2 > $wp2 && $xe2 > $wpe2")"
	printf "| 3x faster than rush's 7.4 s (5000 \`/bin/true\`, 2 at a time): at most 2.47 s | %s s for 5000 (%s) | %s |\n" \
		"$per5k" "$(calc '%.2fx' "7.4 / $per5k")" "$(met "$per5k <= 7.4 / 3")"
	# Those figures came with a spawn baseline of 1.9 s; scaled by the
	# baseline measured here, they compare across machines.
	printf "| 3x faster than rush, scaled by the spawn baseline (rush took 3.89x its 1.9 s baseline) | workerpool takes %s of the baseline: %s faster | %s |\n" \
		"$(calc '%.2fx' "$wp2 / $base2")" "$(calc '%.2fx' "(7.4 / 1.9) / ($wp2 / $base2)")" "$(met "(7.4 / 1.9) / ($wp2 / $base2) >= 3")"
	printf "| 5x faster than GNU parallel's 11.7 s (rush's figures): at most 2.34 s | %s s for 5000 (%s) | %s |\n" \
		"$per5k" "$(calc '%.2fx' "11.7 / $per5k")" "$(met "$per5k <= 11.7 / 5")"
	printf '| 5x faster than GNU parallel on this machine | %s | %s |\n' \
		"$(calc '%.2fx' "($par2 / $par_tasks) / ($wp2 / $tasks)")" "$(met "($par2 / $par_tasks) / ($wp2 / $tasks) >= 5")"
	printf '| peak RSS, %s tasks within 1.2x of %s tasks | %s MiB vs %s MiB: %s | %s |\n' "$mem_large" "$mem_small" \
		"$(mib "${rss[large]}")" "$(mib "${rss[small]}")" "$(calc '%.2fx' "${rss[large]} / ${rss[small]}")" \
		"$(met "${rss[large]} <= 1.2 * ${rss[small]}")"
	printf '| peak RSS, %s tasks under 25 MiB | %s MiB | %s |\n' "$mem_large" "$(mib "${rss[large]}")" "$(met "${rss[large]} < 25 * 1024")"
	printf '| `--ordered` with a slow head under 100 MiB | %s MiB | %s |\n' "$(mib "${rss[ordered]}")" "$(met "${rss[ordered]} < 100 * 1024")"
	printf '| %s MiB output in at most 3x the plain pipe | %s | %s |\n' "$big_mib" "$(calc '%.2fx' "$s_big / $s_pipe")" "$(met "$s_big <= 3 * $s_pipe")"
	printf '| %s MiB output: peak RSS under 1.5x the output | %s | %s |\n' "$big_mib" \
		"$(calc '%.2fx' "${rss[big]} / ($big_mib * 1024)")" "$(met "${rss[big]} < 1.5 * $big_mib * 1024")"
	echo
	echo "## Go benchmarks"
	echo
	echo "\`go test -run '^\$' -bench . -benchmem -count $go_count ./decode ./encode ./dispatch ./pipeline\`; one op"
	echo "of the decode and Write benchmarks is 10,000 tasks or results; one op of BenchmarkPoolRun (the pool"
	echo "with an executor that answers at once), BenchmarkLocalExecute (one \`true\` as a task) and"
	echo "BenchmarkRun (a whole run, decode to encode, without processes) is one task, so allocs/op is"
	echo "what the per-task path allocates. Compare runs with benchstat (\`make bench-go\` runs them with"
	echo "-count 6)."
	echo
	echo '```text'
	grep -v '^ok\|^PASS' "$tmp/gobench.txt"
	echo '```'
	echo
	echo "## Every timed run"
	echo
	echo "| group | command | round | wall | user | system |"
	echo "|---|---|---|---|---|---|"
	sort -t$'\t' -k1,1 -k2,2 -k6,6n "$tmp/times.tsv" |
		awk -F'\t' '{ printf "| %s | %s | %s | %.2f s | %.2f s | %.2f s |\n", $1, $2, $6, $3, $4, $5 }'
	echo
	echo "## Commands"
	echo
	for g in "${groups[@]}"; do
		while IFS=$'\t' read -r name cmd; do
			printf -- '- %s, %s: `%s`\n' "$g" "$name" "${cmd//$tmp/\$TMP}"
		done <<<"${group_cmds[$g]}"
	done
}

report >"$tmp/report.md"
# add_section KNOB SCRIPT OUTVAR HEADING appends the section SCRIPT prints to
# the report, unless KNOB is 0; OUTVAR is the script's own output knob,
# emptied so that it writes only to stdout.
add_section() {
	local knob=$1 script=$2 outvar=$3 heading=$4 name
	[[ ${!knob:-1} != 0 ]] || return 0
	name=$(basename "$script" .sh)
	log "$script ($heading)"
	if env "$outvar=" bash "$script" >"$tmp/$name.md"; then
		{ echo; cat "$tmp/$name.md"; } >>"$tmp/report.md"
	else
		log "$script failed: the report has no $heading section"
	fi
}
add_section BENCH_WIDE bench/wide.sh BENCH_WIDE_OUT "Wide pools"
add_section BENCH_REMOTE bench/remote.sh BENCH_REMOTE_OUT "Many machines"
cp "$tmp/report.md" "$out_file"
cat "$tmp/report.md"
log "wrote $out_file"
