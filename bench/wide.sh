#!/usr/bin/env bash
# bench/wide.sh is `make bench-wide`: it measures workerpool running 10,000
# tasks at once (-t 10000, each `sleep 2`) beside a C peer that only spawns
# and reaps as many (bench/wide.c), xargs -P and GNU parallel -j, and prints
# a markdown section, "## Wide pools". `make bench` (bench/run.sh) appends
# the same section to its report.
#
# It installs what it needs from Debian's packages when missing (GNU
# parallel, jq, gcc, GNU time). Each round runs every contender once, one
# after the other and never two at once, starting with a different one
# each round; a contender starts when nothing the previous one started is
# left. Wall times are taken around each run (bash's EPOCHREALTIME, which
# is `date +%s.%N` without a process); peak RSS and CPU come from GNU time;
# the OS threads of each contender's own process are read from
# /proc/PID/status every 20 ms, its children every second. GNU parallel
# runs under `timeout`; when that kills it (SIGKILL to timeout's process
# group, timeout included), GNU time sees only timeout, and GNU parallel's
# peak RSS is its VmHWM as last read from /proc.
#
# Every contender gets WPBENCH_WIDE=<its temporary directory> in its
# environment, which all it starts inherits: that is how the processes it
# left (orphans included) are found, waited for and, when the bench is
# interrupted, stopped and killed. The inputs, the results and the
# workerpool built for the run live in a temporary directory, removed at
# exit.
#
# Knobs (environment):
#   BENCH_WIDE_TASKS=10000          tasks of each run, all at once
#   BENCH_WIDE_SLEEP=2              what each task sleeps, in seconds
#   BENCH_WIDE_RUNS=1               rounds (medians reported)
#   BENCH_WIDE_PARALLEL_LIMIT=300   seconds GNU parallel may take (timeout)
#   BENCH_WIDE_OUT                  when set, a file (relative to the repo)
#                                   whose "## Wide pools" section is replaced
#                                   by the new one, or gets it appended;
#                                   unset, the section only goes to stdout
#
# shellcheck disable=SC2016 # backquotes in printf formats are markdown
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

tasks=${BENCH_WIDE_TASKS:-10000}
sleep_s=${BENCH_WIDE_SLEEP:-2}
runs=${BENCH_WIDE_RUNS:-1}
par_limit=${BENCH_WIDE_PARALLEL_LIMIT:-300}
out_file=${BENCH_WIDE_OUT:-}
# A contender other than GNU parallel still running after this many seconds
# is taken to hang: it is stopped (SIGTERM, SIGKILL 10 s later) and the
# bench fails.
run_limit=1800

log() { printf 'bench-wide: %s\n' "$*" >&2; }

# shellcheck source=bench/tools.sh
source bench/tools.sh
ensure_tools parallel:parallel jq:jq gcc:gcc /usr/bin/time:time xargs:findutils timeout:coreutils pgrep:procps
command -v go >/dev/null || { log "go is needed to build workerpool"; exit 1; }
[[ -n ${EPOCHREALTIME:-} ]] || { log "bash 5 or newer is needed (EPOCHREALTIME)"; exit 1; }
sleep_bin=$(command -v sleep)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wpwide.XXXXXX")
marker="WPBENCH_WIDE=$tmp"
sampler=

# marked prints the pids of the processes whose environment holds the
# marker: the contenders and everything they started, orphans included.
marked() {
	grep -lzxF -- "$marker" /proc/[0-9]*/environ 2>/dev/null | awk -F/ '{ print $3 }' || true
}

# cleanup stops every marked process (SIGSTOP until no new one appears,
# so that none can start another meanwhile), kills them all and the thread
# sampler, then removes the temporary directory.
cleanup() {
	local pids p i fresh
	local -A stopped=()
	[[ -z $sampler ]] || kill "$sampler" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		mapfile -t pids < <(marked)
		fresh=()
		for p in "${pids[@]}"; do
			[[ -n ${stopped[$p]:-} ]] || { stopped[$p]=1; fresh+=("$p"); }
		done
		((${#fresh[@]})) || break
		kill -STOP "${fresh[@]}" 2>/dev/null || true
	done
	if ((${#stopped[@]})); then
		log "killing ${#stopped[@]} processes the contenders left"
		kill -KILL "${!stopped[@]}" 2>/dev/null || true
	fi
	{ wait; } 2>/dev/null || true # quietly: no "Killed" line for each job
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$tmp/runs"
# read -t on a FIFO that nobody writes is a sleep that starts no process.
mkfifo "$tmp/tick"

log "building workerpool and the C peer in $tmp"
go build -o "$tmp/workerpool" .
gcc -O2 -Wall -o "$tmp/wide" bench/wide.c
wp=$tmp/workerpool

# --- inputs -----------------------------------------------------------------
repeat() { yes "$2" | head -n "$1" || true; }
repeat "$tasks" "{\"command\":\"sleep\",\"args\":[\"$sleep_s\"]}" >"$tmp/tasks.ndjson"
repeat "$tasks" "$sleep_s" >"$tmp/lines"

# --- contenders -------------------------------------------------------------
# Each command writes its output to $tmp/NAME.out and .err; exes names the
# executable of the contender's own process, whose threads are counted.
contenders=(workerpool wide xargs parallel)
declare -A cmds exes
cmds[workerpool]="$wp --ndjson -t $tasks <$tmp/tasks.ndjson >$tmp/workerpool.out 2>$tmp/workerpool.err"
cmds[wide]="$tmp/wide $tasks $sleep_bin $sleep_s </dev/null >$tmp/wide.out 2>$tmp/wide.err"
cmds[xargs]="xargs -t -P $tasks -n 1 -a $tmp/lines sleep </dev/null >$tmp/xargs.out 2>$tmp/xargs.err"
cmds[parallel]="timeout -k 10 $par_limit parallel --will-cite -j $tasks --joblog $tmp/joblog sleep :::: $tmp/lines </dev/null >$tmp/parallel.out 2>$tmp/parallel.err"
exes=([workerpool]=$wp [wide]=$tmp/wide [xargs]=$(command -v xargs) [parallel]=$(command -v perl))

# sample ROOT EXE LIMIT FILE finds the contender's own process, a child or
# grandchild of ROOT (GNU time's pid) that runs EXE (compared by inode, so
# not GNU time's child before its exec), then reads its thread count and
# peak RSS (VmHWM) from /proc every 20 ms, and its children (of all its
# threads) every second, until it is gone. It writes "PID MOST-THREADS
# HUNG PEAK-RSS-KIB MOST-CHILDREN" to FILE. A contender still running after
# LIMIT seconds is sent SIGTERM, SIGKILL 10 s later, and HUNG is 1.
sample() {
	local root=$1 exe=$2 limit=$3 file=$4 pid='' threads=0 hwm=0 kids=0 hung=0 n=0 p q k v t c
	local -a list
	exec 9<>"$tmp/tick"
	SECONDS=0
	while [[ -z $pid ]] && kill -0 "$root" 2>/dev/null; do
		for p in $(pgrep -P "$root" || true); do
			for q in "$p" $(pgrep -P "$p" || true); do
				if [[ /proc/$q/exe -ef $exe ]]; then
					pid=$q
					break 2
				fi
			done
		done
		[[ -n $pid ]] || read -rt 0.005 -u 9 _ || true
	done
	while [[ -n $pid ]]; do
		{
			while read -r k v _; do
				case $k in
				VmHWM:) ((v <= hwm)) || hwm=$v ;;
				Threads:)
					((v <= threads)) || threads=$v
					break
					;;
				esac
			done
		} 2>/dev/null <"/proc/$pid/status" || break
		if ((n++ % 50 == 0)); then
			c=0
			for t in "/proc/$pid/task/"*/children; do
				list=()
				read -ra list 2>/dev/null <"$t" || true
				c=$((c + ${#list[@]}))
			done
			((c <= kids)) || kids=$c
		fi
		if ((SECONDS > limit + 10)); then
			kill -KILL "$pid" 2>/dev/null || true
		elif ((SECONDS > limit && !hung)); then
			hung=1
			kill -TERM "$pid" 2>/dev/null || true
		fi
		read -rt 0.02 -u 9 _ || true
	done
	if [[ -n $pid ]]; then
		echo "$pid $threads $hung $hwm $kids" >"$file"
	else
		echo "- - $hung - -" >"$file"
	fi
}

# settle waits (at most SLEEP + 30 s) until no marked process is left, so
# that a contender does not share the machine with the last one's stragglers.
settle() {
	local i left
	for ((i = 0; i < (sleep_s + 30) * 10; i++)); do
		left=$(marked | wc -l)
		((left == 0)) && return 0
		((i % 50)) || log "waiting for $left processes the last contender left"
		read -rt 0.1 -u 9 _ || true
	done 9<>"$tmp/tick"
	log "$left processes of the last contenders are still running"
}

# runs.tsv collects, for every run: name, round, wall seconds (to the
# hundredth, so that the tables agree), peak RSS KiB, user s, system s, most
# threads, exit status, hung (1/0), results (lines, tasks run or completed),
# of which exited 0, notes, and most children.
: >"$tmp/runs.tsv"

# run NAME ROUND runs one contender under GNU time and records it.
run() {
	local name=$1 round=$2 t0 t1 status=0 timepid pid threads hung rss user sys
	local count ok note='' limit=$run_limit spawned='' failed eagain hwm kids
	# GNU parallel has a limit of its own, the timeout it runs under.
	[[ $name != parallel ]] || limit=$((par_limit + 60))
	rm -f "$tmp/joblog" "$tmp/$name.out" "$tmp/$name.err"
	log "round $round/$runs: $name ($tasks tasks)"
	t0=$EPOCHREALTIME
	eval "$marker /usr/bin/time -f '%M %e %U %S' -o $tmp/$name.time ${cmds[$name]} &"
	timepid=$!
	sample "$timepid" "${exes[$name]}" "$limit" "$tmp/$name.threads" &
	sampler=$!
	wait "$timepid" || status=$?
	t1=$EPOCHREALTIME
	wait "$sampler" || true
	sampler=
	read -r pid threads hung hwm kids <"$tmp/$name.threads"
	# GNU time writes "Command exited with non-zero status N" first.
	rss='' user='' sys=''
	read -r rss _ user sys < <(tail -n 1 "$tmp/$name.time" 2>/dev/null) || true
	[[ $rss =~ ^[0-9]+$ ]] || { rss=nan user=nan sys=nan; }
	((hung == 0)) || { log "$name was still running after $limit s"; exit 1; }
	case $name in
	workerpool)
		count=$(wc -l <"$tmp/workerpool.out")
		if ((count != tasks)); then
			log "workerpool wrote $count results for $tasks tasks (exit status $status); its stderr:"
			head -n 20 "$tmp/workerpool.err" >&2
			exit 1
		fi
		ok=$(jq -s '[.[] | select(.exit_code == 0)] | length' "$tmp/workerpool.out")
		;;
	wide)
		read -r spawned failed eagain < <(sed -n 's/^spawned=\([0-9.]*\) done=[0-9.]* failed=\([0-9]*\) eagain=\([0-9]*\)$/\1 \2 \3/p' "$tmp/wide.out") || true
		[[ -n $spawned ]] || { log "wide printed no result (exit status $status)"; cat "$tmp/wide.err" >&2; exit 1; }
		count=$((tasks - failed)) ok=$count
		note="spawned=$spawned eagain=$eagain"
		;;
	xargs)
		# -t prints each command line to stderr before it runs it.
		count=$(grep -cxF "sleep $sleep_s" "$tmp/xargs.err" || true)
		ok=-
		((status != 0)) || ok=$count
		grep -vxF "sleep $sleep_s" "$tmp/xargs.err" >"$tmp/xargs.err2" || true
		mv "$tmp/xargs.err2" "$tmp/xargs.err"
		;;
	parallel)
		count=0 ok=0
		if [[ -f $tmp/joblog ]]; then
			count=$(($(wc -l <"$tmp/joblog") - 1))
			((count >= 0)) || count=0
			ok=$(awk -F'\t' 'NR > 1 && $7 == 0 && $8 == 0' "$tmp/joblog" | wc -l)
		fi
		[[ $status != 124 && $status != 137 ]] || note="timeout"
		if [[ $status == 137 ]]; then
			# timeout's SIGKILL went to its whole process group, itself
			# included: GNU time saw timeout die, not GNU parallel
			# end, so the peak RSS is GNU parallel's own, from /proc.
			rss=$hwm user='?' sys='?'
			note+=" killed"
		fi
		;;
	esac
	cp "$tmp/$name.err" "$tmp/runs/$name-$round.err"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" \
		"$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")" "$rss" "$user" "$sys" "$threads" "$status" "$hung" \
		"$count" "$ok" "$note" "$kids" >>"$tmp/runs.tsv"
	log "$name: $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s, exit status $status, threads $threads (pid $pid), children $kids, results $count"
}

# --- runs -------------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
for ((round = 1; round <= runs; round++)); do
	# Round r starts with the (r-1)th contender, so that no contender
	# always runs right after the same one.
	for ((i = 0; i < ${#contenders[@]}; i++)); do
		settle
		run "${contenders[(i + round - 1) % ${#contenders[@]}]}" "$round"
	done
done
settle
finished=$(date +%s)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
left=$(marked | wc -l)

# --- report -----------------------------------------------------------------
# column NAME COLUMN prints that column of runs.tsv for every run of NAME.
column() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$tmp/runs.tsv"; }
median() {
	column "$1" "$2" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
most() { column "$1" "$2" | sort -g | tail -n 1; }
least() { column "$1" "$2" | sort -g | head -n 1; }
each() { column "$1" "$2" | sort -u | paste -sd, - | sed 's/,/, /g'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
mib() { if [[ ! $1 =~ ^[0-9]+$ ]]; then echo "?"; else calc '%.1f MiB' "$1 / 1024"; fi; }
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo '**missed**'; fi; }
# spawn_time prints the median time the C peer took to spawn its children.
spawn_time() {
	column wide 12 | sed 's/^spawned=\([0-9.]*\) .*/\1/' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
eagains() { column wide 12 | sed 's/.* eagain=//' | sort -u | paste -sd, - | sed 's/,/, /g'; }

report() {
	local w_wp w_wide w_x w_par spawn goal timeouts killed name label line f n
	w_wp=$(median workerpool 3) w_wide=$(median wide 3) w_x=$(median xargs 3) w_par=$(median parallel 3)
	spawn=$(spawn_time)
	goal=$(calc '%f' "$sleep_s + $spawn")
	timeouts=$(column parallel 12 | grep -c timeout || true)
	echo "## Wide pools"
	echo
	echo "Written by \`make bench-wide\` (bench/wide.sh). $tasks tasks of \`sleep $sleep_s\`, all at once: workerpool"
	echo "\`-t $tasks\` (NDJSON in, one result per task out, each task's stdout and stderr captured), a C"
	echo "peer that does nothing but posix_spawn them back to back and reap them (bench/wide.c: one"
	echo "thread, stdin and stdout /dev/null), \`xargs -P $tasks\` (captures nothing; \`-t\` prints each"
	echo "command line it runs to stderr, which is how its tasks are counted) and GNU parallel \`-j $tasks\`"
	echo "under a $par_limit s timeout (its tasks counted from its \`--joblog\`). Before it runs a task, GNU"
	echo "parallel probes the system's limits by forking one dummy \`sleep 10101\` per job slot and"
	echo "opening 4 file handles for each, stopping at -j or at the first that fails."
	echo
	echo "The C peer's time to spawn them all is what starting $tasks processes takes on this machine;"
	echo "a pool that keeps up with it ends about $sleep_s s after that. The contenders run one after the"
	echo "other, each once per round ($runs round(s), the order rotated), each under GNU time (peak RSS is"
	echo "its %M: the largest of the contender and any one child); the threads are the most the"
	echo "contender's own process had, read from /proc every 20 ms, and the children the most it had"
	echo "at once, read every second (those that have exited count until they are reaped: the C peer"
	echo "reaps none before it has spawned them all). Wall times are medians; peak RSS, threads,"
	echo "children and failures are the worst round's."
	echo
	echo "Machine: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), $(uname -sr),"
	echo "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) of memory, \`ulimit -u\` $(ulimit -u),"
	echo "\`ulimit -n\` $(ulimit -n) (hard $(ulimit -Hn)), \`/proc/sys/kernel/pid_max\` $(cat /proc/sys/kernel/pid_max);"
	echo "$(go version | cut -d' ' -f3), $(parallel --version | head -1), $(xargs --version | head -1),"
	echo "$(gcc --version | head -1); load average $load_before before, $load_after after"
	echo "($((finished - started)) s)."
	echo
	echo "| contender | wall | peak RSS | most threads | results / completed | notes |"
	echo "|---|---|---|---|---|---|"
	printf '| workerpool `--ndjson -t %s` | %.2f s | %s | %s | %s results, %s exit 0 | exit status %s; up to %s children at once |\n' \
		"$tasks" "$w_wp" "$(mib "$(most workerpool 4)")" "$(most workerpool 7)" "$(least workerpool 10)" \
		"$(least workerpool 11)" "$(each workerpool 8)" "$(most workerpool 13)"
	printf '| C peer (bench/wide.c) | %.2f s | %s | %s | %s of %s exited 0 | spawned all in %.2f s; EAGAIN %s; exit status %s; up to %s children at once |\n' \
		"$w_wide" "$(mib "$(most wide 4)")" "$(most wide 7)" "$(least wide 10)" "$tasks" "$spawn" "$(eagains)" \
		"$(each wide 8)" "$(most wide 13)"
	printf '| `xargs -P %s -n 1` | %.2f s | %s | %s | ran %s of %s | exit status %s; captures nothing; up to %s children at once |\n' \
		"$tasks" "$w_x" "$(mib "$(most xargs 4)")" "$(most xargs 7)" "$(least xargs 10)" "$tasks" "$(each xargs 8)" \
		"$(most xargs 13)"
	if ((timeouts > 0)); then
		line="stopped by the $par_limit s timeout in $timeouts of $runs round(s)"
		killed=$(column parallel 12 | grep -c killed || true)
		((killed == 0)) ||
			line+=", killed 10 s later in $killed (SIGKILL to its process group: the peak RSS is its own, from /proc)"
	else
		line="finished within the $par_limit s limit"
	fi
	printf '| GNU parallel `-j %s` | %.2f s | %s | %s | completed %s of %s (%s exit 0) | exit status %s; %s; up to %s children at once |\n' \
		"$tasks" "$w_par" "$(mib "$(most parallel 4)")" "$(most parallel 7)" "$(least parallel 10)" "$tasks" \
		"$(least parallel 11)" "$(each parallel 8)" "$line" "$(most parallel 13)"
	echo
	for name in "${contenders[@]}"; do
		case $name in
		workerpool) label=workerpool ;;
		wide) label="The C peer" ;;
		xargs) label="xargs" ;;
		parallel) label="GNU parallel" ;;
		esac
		for f in "$tmp/runs/$name"-*.err; do
			[[ -s $f ]] || continue
			n=$(wc -l <"$f")
			if ((n > 3)); then
				n="the first 3 of its $n lines"
			else
				n="all of it"
			fi
			echo "$label's stderr (round $(basename "$f" .err | sed 's/.*-//'), $n):"
			echo
			echo '```text'
			head -n 3 "$f" | sed "s|$tmp|\$TMP|g"
			echo '```'
			echo
		done
	done
	echo "| target | measured | |"
	echo "|---|---|---|"
	printf '| wall under %s s + the C peer'"'"'s spawn time | %.2f s, against %s + %.2f = %.2f s | %s |\n' \
		"$sleep_s" "$w_wp" "$sleep_s" "$spawn" "$goal" "$(met "$w_wp < $goal")"
	printf '| fewer than 64 OS threads | %s | %s |\n' "$(most workerpool 7)" "$(met "$(most workerpool 7) < 64")"
	printf '| peak RSS under 200 MiB | %s | %s |\n' "$(mib "$(most workerpool 4)")" "$(met "$(most workerpool 4) < 200 * 1024")"
	printf '| all %s results, each exit 0 | %s results, %s exit 0 | %s |\n' "$tasks" "$(least workerpool 10)" \
		"$(least workerpool 11)" "$(met "$(least workerpool 10) == $tasks && $(least workerpool 11) == $tasks")"
	echo
	if ((left == 0)); then
		echo "Left behind after the runs: nothing (no process with the run's marker in its environment)."
	else
		echo "Left behind after the runs: $left processes with the run's marker in their environment."
	fi
	echo
	echo "### Every run"
	echo
	echo "| contender | round | wall | peak RSS | user | system | most threads | most children | exit status | results | exit 0 |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	sort -t$'\t' -k1,1 -k2,2n "$tmp/runs.tsv" |
		awk -F'\t' 'function u(v, unit) { return v ~ /^[0-9.]+$/ ? v " " unit : "?" }
			{ printf "| %s | %s | %.2f s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, u($4, "KiB"), u($5, "s"), u($6, "s"), $7, $13, $8, $10, $11 }'
	echo
	echo "### Commands"
	echo
	echo "\$TMP is the temporary directory. Each runs as \`/usr/bin/time -f '%M %e %U %S' -o FILE COMMAND\`."
	echo
	for name in "${contenders[@]}"; do
		printf -- '- %s: `%s`\n' "$name" "${cmds[$name]//$tmp/\$TMP}"
	done
}

report >"$tmp/section.md"
if [[ -n $out_file ]]; then
	replace_section "$out_file" "Wide pools" "$tmp/section.md"
	log "wrote the Wide pools section of $out_file"
fi
cat "$tmp/section.md"
