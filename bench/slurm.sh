#!/usr/bin/env bash
# bench/slurm.sh is run by `make bench-slurm`, through the Go test
# TestBenchSlurm (internal/e2e/bench_slurm_test.go), which starts a Slurm
# cluster on 127.0.0.1 (internal/slurmtest), takes an allocation of all its
# nodes and CPUs, and runs this script as a process inside the allocation.
# It measures workerpool --slurm (one agent per node, each a job step
# started through srun) against the same workerpool run locally with as many
# slots, and against GNU parallel running one srun per task, and prints a
# markdown section, "## On Slurm".
#
# It installs what it needs from Debian's packages when missing (GNU
# parallel, hyperfine, jq). Timings are hyperfine medians over
# BENCH_SLURM_RUNS rounds; each round runs every contender once, one after
# the other, so that a change in the machine's load hits all of them alike.
# The inputs live in a temporary directory, removed at exit.
#
# The environment describes the allocation, as salloc sets it: SLURM_JOB_ID,
# SLURM_JOB_NODELIST, SLURM_JOB_CPUS_PER_NODE (and SLURM_CONF for the lab's
# clients). WORKERPOOL_BENCH_BIN is the workerpool to measure (built here
# when unset). When the cluster's daemons run on this machine, the test
# gives their pids, and the CPU of the cluster's side is counted:
#   BENCH_SLURM_SLURMCTLD, BENCH_SLURM_SLURMD (space-separated),
#   BENCH_SLURM_MUNGED    pids of the daemons: the user + system time of each,
#                         its own and its reaped children's, from
#                         /proc/<pid>/stat, before and after each run
#   BENCH_SLURM_REAPER    the pid of the process that reaps every slurmstepd
#                         (slurmd orphans them; the test is their subreaper)
#   BENCH_SLURM_STEPS     the file where it sums their CPU, "<steps> <self
#                         and children µs> <children ticks>"
# Without them, as inside an allocation of a real cluster, only the sending
# side's CPU is reported.
#
# Knobs (environment):
#   BENCH_SLURM_TASKS=2000          tasks per local and --slurm run
#   BENCH_SLURM_RUNS=5              rounds of the timed runs (median reported)
#   BENCH_SLURM_PARALLEL_TASKS=200  tasks per GNU parallel + srun run (it is
#                                   much slower; it is compared by tasks/s)
#   BENCH_SLURM_PARALLEL_RUNS=1     rounds that include GNU parallel
#   BENCH_SLURM_OUT                 when set, a file (relative to the repo)
#                                   whose "## On Slurm" section is replaced
#                                   by the new one, or gets it appended;
#                                   unset, the section only goes to stdout
#
# shellcheck disable=SC2016 # backquotes in printf formats are markdown
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

tasks=${BENCH_SLURM_TASKS:-2000}
runs=${BENCH_SLURM_RUNS:-5}
par_tasks=${BENCH_SLURM_PARALLEL_TASKS:-200}
par_runs=${BENCH_SLURM_PARALLEL_RUNS:-1}
out_file=${BENCH_SLURM_OUT:-}
# A timed run that takes longer than this is taken to hang: it is killed
# and the bench fails.
run_limit=1800

log() { printf 'bench-slurm: %s\n' "$*" >&2; }

[[ -n ${SLURM_JOB_ID:-} && -n ${SLURM_JOB_NODELIST:-} && -n ${SLURM_JOB_CPUS_PER_NODE:-} ]] || {
	log "not inside a Slurm allocation (SLURM_JOB_ID, SLURM_JOB_NODELIST, SLURM_JOB_CPUS_PER_NODE):"
	log "run make bench-slurm, which starts a cluster on 127.0.0.1, or run this under salloc"
	exit 2
}
job=$SLURM_JOB_ID

# shellcheck source=bench/tools.sh
source bench/tools.sh
ensure_tools parallel:parallel hyperfine:hyperfine jq:jq srun:slurm-client squeue:slurm-client

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wpslurm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$tmp/hf"

wp=${WORKERPOOL_BENCH_BIN:-}
if [[ -z $wp ]]; then
	command -v go >/dev/null || { log "go is needed to build workerpool"; exit 1; }
	log "building workerpool in $tmp"
	CGO_ENABLED=0 go build -o "$tmp/workerpool" .
	wp=$tmp/workerpool
fi

# The slots: the CPUs of the allocation, as --slurm counts them, e.g.
# "2(x3)" or "4,2".
slots=0 nodes=0
IFS=, read -ra parts <<<"$SLURM_JOB_CPUS_PER_NODE"
for part in "${parts[@]}"; do
	count=${part%%(*} times=1
	[[ $part == *'(x'*')' ]] && { times=${part#*(x}; times=${times%)}; }
	slots=$((slots + count * times)) nodes=$((nodes + times))
done
((slots > 0)) || { log "SLURM_JOB_CPUS_PER_NODE=$SLURM_JOB_CPUS_PER_NODE: no CPUs"; exit 1; }

# lab: the daemons run on this machine, and their CPU is counted.
lab=
if [[ -n ${BENCH_SLURM_SLURMCTLD:-} && -n ${BENCH_SLURM_SLURMD:-} && -n ${BENCH_SLURM_MUNGED:-} &&
	-n ${BENCH_SLURM_REAPER:-} && -n ${BENCH_SLURM_STEPS:-} ]]; then
	lab=1
	read -ra slurmd_pids <<<"$BENCH_SLURM_SLURMD"
fi

# --- inputs -----------------------------------------------------------------
repeat() { yes "$2" | head -n "$1" || true; }
repeat "$tasks" '{"command":"/bin/true"}' >"$tmp/true.ndjson"
repeat 1 '{"command":"/bin/true"}' >"$tmp/one.ndjson"
repeat 30 '{"command":"/bin/true"}' >"$tmp/check.ndjson"
seq "$par_tasks" >"$tmp/lines-par"

# Checks before timing (and a warm-up): a step through srun, and a --slurm
# run in which every task runs and exits 0.
log "job $job: nodes $SLURM_JOB_NODELIST, CPUs $SLURM_JOB_CPUS_PER_NODE ($slots slots)"
timeout 60 srun --jobid="$job" -N1 -n1 --overlap --quiet /bin/true ||
	{ log "srun --jobid=$job /bin/true failed"; exit 1; }
log "checking --slurm with 30 tasks"
timeout 120 "$wp" --ndjson --slurm <"$tmp/check.ndjson" >"$tmp/check.out" 2>"$tmp/check.err" ||
	{ log "workerpool --slurm failed (exit $?):"; cat "$tmp/check.err" >&2; exit 1; }
got=$(jq -s '[.[] | select(.exit_code == 0)] | length' "$tmp/check.out")
[[ $got == 30 ]] || { log "--slurm check: $got of 30 tasks exited 0"; cat "$tmp/check.out" "$tmp/check.err" >&2; exit 1; }
log "the check's tasks ran on: $(jq -r .host "$tmp/check.out" | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')"

# --- CPU of the cluster's side ----------------------------------------------
ticks=$(getconf CLK_TCK)
# pid_ticks PID prints the CPU ticks of a process: user + system, its own
# and its children's that it has waited for (fields 14 to 17 of its stat).
pid_ticks() {
	local s f
	s=$(<"/proc/$1/stat")
	s=${s##*) }
	read -ra f <<<"$s"
	echo $((f[11] + f[12] + f[13] + f[14]))
}
# cpu_now prints, tab-separated, in seconds: slurmctld, the slurmd daemons,
# the slurmstepd processes themselves, their children (the steps' tasks),
# munged; then the number of steps reaped.
cpu_now() {
	[[ -n $lab ]] || { printf '0\t0\t0\t0\t0\t0\n'; return; }
	local ctld sd=0 p n total_us child_ticks munge
	ctld=$(pid_ticks "$BENCH_SLURM_SLURMCTLD")
	for p in "${slurmd_pids[@]}"; do sd=$((sd + $(pid_ticks "$p"))); done
	munge=$(pid_ticks "$BENCH_SLURM_MUNGED")
	read -r n total_us child_ticks <"$BENCH_SLURM_STEPS"
	awk -v t="$ticks" -v c="$ctld" -v d="$sd" -v u="$total_us" -v k="$child_ticks" -v m="$munge" -v n="$n" \
		'BEGIN { printf "%f\t%f\t%f\t%f\t%f\t%d\n", c / t, d / t, u / 1e6 - k / t, k / t, m / t, n }'
}
# steps_alive succeeds when a slurmstepd of the cluster has not been
# reaped yet (lab), or when the job still has a step (otherwise).
steps_alive() {
	if [[ -z $lab ]]; then
		[[ -n $(squeue -h -s -j "$job" -o %i 2>/dev/null) ]]
		return
	fi
	local f s
	for f in /proc/[0-9]*/stat; do
		read -r s 2>/dev/null <"$f" || continue
		[[ $s == *" (slurmstepd) "* ]] || continue
		s=${s##*) }
		s=${s#* }
		[[ ${s%% *} == "$BENCH_SLURM_REAPER" ]] && return 0
	done
	return 1
}
# wait_steps waits (at most 20 s) until no step is left, so that their
# CPU is counted; it fails when one is.
wait_steps() {
	local i
	for ((i = 0; i < 200; i++)); do
		steps_alive || return 0
		sleep 0.1
	done
	return 1
}
# The daemons' work while nothing runs (heartbeats, pings), per second,
# over a few seconds: the runs are not corrected for it, it is reported.
wait_steps || true
idle_secs=5
idle_before=$(cpu_now)
sleep "$idle_secs"
idle_after=$(cpu_now)

# --- timed runs -------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
contenders=(local slurm setup parallel)
declare -A cmds ntasks
cmds[local]="$wp --ndjson -t $slots <$tmp/true.ndjson >/dev/null"
cmds[slurm]="$wp --ndjson --slurm <$tmp/true.ndjson >/dev/null"
cmds[setup]="$wp --ndjson --slurm <$tmp/one.ndjson >/dev/null"
cmds[parallel]="parallel --will-cite -j $slots srun --jobid=$job -N1 -n1 --overlap --quiet /bin/true :::: $tmp/lines-par >/dev/null"
ntasks=([local]=$tasks [slurm]=$tasks [setup]=1 [parallel]=$par_tasks)

# times.tsv collects "name<TAB>wall<TAB>user<TAB>system<TAB>slurmctld<TAB>
# slurmd<TAB>slurmstepd<TAB>steps' tasks<TAB>munged<TAB>steps<TAB>round".
: >"$tmp/times.tsv"
lingering=()
for ((round = 1; round <= runs; round++)); do
	mapfile -t names < <(round_order "$round" "$par_runs" "${contenders[@]}")
	for name in "${names[@]}"; do
		log "round $round/$runs: $name (${ntasks[$name]} tasks)"
		wait_steps || true
		before=$(cpu_now)
		timeout -k 10 "$run_limit" hyperfine --runs 1 --style none --export-json "$tmp/hf/$name-$round.json" \
			-n "$name" "${cmds[$name]}" >>"$tmp/hyperfine.log" 2>&1 ||
			{ cat "$tmp/hyperfine.log" >&2; exit 1; }
		if ! wait_steps; then
			log "a step still running 20 s after $name ended"
			lingering+=("$name (round $round)")
		fi
		after=$(cpu_now)
		delta=$(paste <(tr '\t' '\n' <<<"$before") <(tr '\t' '\n' <<<"$after") | awk '{ printf "%s%f", (NR > 1 ? "\t" : ""), $2 - $1 }')
		jq -r --arg r "$round" --arg d "$delta" \
			'.results[] | [.command, .times[0], .user, .system] + ($d | split("\t")) + [$r] | @tsv' \
			"$tmp/hf/$name-$round.json" >>"$tmp/times.tsv"
	done
done

# Processes still running the workerpool measured, or with the temporary
# directory on their command line, and the job's steps still there.
leftovers() {
	local p pid exe args
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		exe=$(readlink "$p/exe" 2>/dev/null || true)
		args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline" || true)
		[[ $exe == "$wp" || $args == *"$tmp"* ]] && printf '%s %s\n' "$pid" "${args//$tmp/\$TMP}"
	done
	return 0
}
finished=$(date +%s)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
left=$(leftovers)
[[ -z $left ]] || log "processes left behind: $left"
left_steps=$(squeue -h -s -j "$job" -o '%i %j' 2>/dev/null || true)
[[ -z $left_steps ]] || log "steps left in job $job: $left_steps"

# --- report -----------------------------------------------------------------
# median NAME [COLUMN] prints the median wall time in seconds, or of another
# column of times.tsv (0 is user + system, 50 slurmctld + slurmd +
# slurmstepd, 99 every column of CPU).
median() {
	awk -F'\t' -v n="$1" -v c="${2:-2}" '$1 == n {
		if (c == 0) v = $3 + $4
		else if (c == 50) v = $5 + $6 + $7
		else if (c == 99) v = $3 + $4 + $5 + $6 + $7 + $8 + $9
		else v = $c
		print v
	}' "$tmp/times.tsv" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo '**missed**'; fi; }
# ms SECONDS N prints SECONDS per task in milliseconds.
ms() { calc '%.2f ms' "$1 * 1000 / $2"; }

report() {
	local s_local s_slurm s_setup s_par r_local r_slurm r_par
	s_local=$(median local) s_slurm=$(median slurm) s_setup=$(median setup) s_par=$(median parallel)
	r_local=$(calc '%f' "$tasks / $s_local") r_slurm=$(calc '%f' "$tasks / $s_slurm")
	r_par=$(calc '%f' "$par_tasks / $s_par")
	echo "## On Slurm"
	echo
	echo "Written by \`make bench-slurm\` (internal/e2e/bench_slurm_test.go, bench/slurm.sh). \`--slurm\`"
	if [[ -n $lab ]]; then
		echo "runs inside an allocation of a Slurm cluster on 127.0.0.1 (internal/slurmtest): slurmctld,"
		echo "munged and one slurmd per node, $nodes nodes, all on this machine, so the daemons, the agents,"
		echo "the tasks and the sending side share its $(nproc) CPUs."
	else
		echo "runs inside an allocation of the Slurm cluster this script found itself in."
	fi
	echo "The allocation (job $job) holds $SLURM_JOB_NODELIST with \`SLURM_JOB_CPUS_PER_NODE=$SLURM_JOB_CPUS_PER_NODE\`:"
	echo "$slots slots, which every contender gets. Each contender runs \`/bin/true\` tasks, its output to"
	echo "/dev/null. Times are hyperfine medians over $runs rounds (GNU parallel: $par_runs), each round"
	echo "running every contender once; the \`--slurm\` runs include starting one agent per node (a step"
	echo "through srun), which the 1-task run shows alone. GNU parallel runs the common recipe, one"
	echo "\`srun --overlap\` step per task."
	echo
	echo "Machine: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), $(srun --version),"
	echo "$(hyperfine --version), $(parallel --version | head -1); load average $load_before before,"
	echo "$load_after after ($((finished - started)) s)."
	echo
	echo "| contender | tasks | median wall | tasks/s | ratio (\`--slurm\` tasks/s ÷ this) |"
	echo "|---|---|---|---|---|"
	printf '| workerpool `-t %s` (local) | %s | %.2f s | %.0f | %.2fx |\n' "$slots" "$tasks" "$s_local" "$r_local" \
		"$(calc '%f' "$r_slurm / $r_local")"
	printf '| workerpool `--slurm` | %s | %.2f s | %.0f | 1.00x |\n' "$tasks" "$s_slurm" "$r_slurm"
	printf '| GNU parallel `-j %s srun ...` | %s | %.2f s | %.1f | %.1fx |\n' "$slots" "$par_tasks" "$s_par" "$r_par" \
		"$(calc '%f' "$r_slurm / $r_par")"
	echo
	printf 'Set-up: a 1-task `--slurm` run (start the agents, run one task, end the steps) takes %.2f s;\n' "$s_setup"
	printf 'without it the %s-task `--slurm` run does %.0f tasks/s.\n' "$tasks" \
		"$(awk "BEGIN { d = $s_slurm - $s_setup; if (d <= 0) d = $s_slurm; printf \"%f\", $tasks / d }")"
	echo
	echo "- \`--slurm\` ≥ 0.5x local throughput: $(calc '%.2fx' "$r_slurm / $r_local") ($(met "$r_slurm >= 0.5 * $r_local"))"
	echo "- \`--slurm\` ≥ 20x GNU parallel + srun: $(calc '%.1fx' "$r_slurm / $r_par") ($(met "$r_slurm >= 20 * $r_par"))"
	echo
	local name label n line
	if [[ -z $lab ]]; then
		echo "CPU per task (median user + system) of the sending side, the timed command and its children"
		echo "(hyperfine): workerpool and its srun processes, or GNU parallel and its; the nodes' side is not"
		echo "counted here."
		echo
		echo "| contender | sending side |"
		echo "|---|---|"
	else
		echo "CPU per task (median user + system, each column its own median):"
		echo
		echo "- sending side: the timed command and its children (hyperfine): workerpool and its srun"
		echo "  processes, one per node, or GNU parallel, its shells and its srun processes; for the local"
		echo "  run, the tasks too."
		echo "- steps' tasks: what slurmstepd ran and waited for: the agents and the tasks they ran, or"
		echo "  GNU parallel's \`/bin/true\` on the node. slurmd orphans every slurmstepd; the test is their"
		echo "  subreaper and reaps them, and sums each one's rusage (its own and its children's, in µs)"
		echo "  and its children's part, cutime + cstime of its /proc/<pid>/stat, in ticks of"
		echo "  1/$ticks s: a child's CPU below a tick (a \`/bin/true\` step's) is counted with slurmstepd."
		echo "- slurmctld, slurmd: user + system, their own and their reaped children's, from"
		echo "  /proc/<pid>/stat before and after the run (all $nodes slurmd summed); slurmstepd: the rest"
		echo "  of each step's rusage. munged authenticates every Slurm message; it is shown apart."
		echo "- The daemons' background work is not taken off: at rest they used $(idle_rate) of CPU."
		echo
		echo "| contender | sending side | steps' tasks | slurmctld | slurmd | slurmstepd | munged | total |"
		echo "|---|---|---|---|---|---|---|---|"
	fi
	for name in local slurm setup parallel; do
		case $name in
		local) label="workerpool \`-t $slots\` (local)" ;;
		slurm) label="workerpool \`--slurm\`" ;;
		setup) label="workerpool \`--slurm\`, 1 task (set-up)" ;;
		parallel) label="GNU parallel + srun" ;;
		esac
		n=${ntasks[$name]}
		if [[ -z $lab ]]; then
			printf '| %s | %s |\n' "$label" "$(ms "$(median "$name" 0)" "$n")"
		else
			printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
				"$(ms "$(median "$name" 0)" "$n")" "$(ms "$(median "$name" 8)" "$n")" \
				"$(ms "$(median "$name" 5)" "$n")" "$(ms "$(median "$name" 6)" "$n")" \
				"$(ms "$(median "$name" 7)" "$n")" "$(ms "$(median "$name" 9)" "$n")" \
				"$(ms "$(median "$name" 99)" "$n")"
		fi
	done
	echo
	if [[ -z $left && -z $left_steps && ${#lingering[@]} == 0 ]]; then
		echo "Left behind after the runs: nothing (no process of this workerpool or with its temporary"
		echo "directory in its command line, no step still running in the job)."
	else
		echo "Left behind after the runs:"
		[[ -z $left ]] || while read -r line; do echo "- process $line"; done <<<"$left"
		[[ -z $left_steps ]] || while read -r line; do echo "- step $line"; done <<<"$left_steps"
		((${#lingering[@]} == 0)) || printf -- '- a step still running 20 s after: %s\n' "${lingering[@]}"
	fi
	echo
	echo "### Every timed run"
	echo
	if [[ -z $lab ]]; then
		echo "| contender | round | wall | user | system |"
		echo "|---|---|---|---|---|"
		sort -t$'\t' -k1,1 -k11,11n "$tmp/times.tsv" |
			awk -F'\t' '{ printf "| %s | %s | %.2f s | %.2f s | %.2f s |\n", $1, $11, $2, $3, $4 }'
	else
		echo "User and system are the sending side's; the steps are the slurmstepd processes reaped."
		echo
		echo "| contender | round | wall | user | system | steps' tasks | slurmctld | slurmd | slurmstepd | munged | steps |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|"
		sort -t$'\t' -k1,1 -k11,11n "$tmp/times.tsv" |
			awk -F'\t' '{ printf "| %s | %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %d |\n",
				$1, $11, $2, $3, $4, $8, $5, $6, $7, $9, $10 }'
	fi
	echo
	echo "### Commands"
	echo
	echo "\$TMP is the temporary directory; \$WORKERPOOL the workerpool built for the run. The environment"
	echo "is the allocation's (SLURM_JOB_ID=$job, SLURM_JOB_NODELIST, SLURM_JOB_CPUS_PER_NODE)."
	echo
	local cmd
	for name in local slurm setup parallel; do
		cmd=${cmds[$name]//$wp/\$WORKERPOOL}
		printf -- '- %s: `%s`\n' "$name" "${cmd//$tmp/\$TMP}"
	done
}

# idle_rate prints the daemons' CPU at rest, slurmctld + slurmd +
# munged, as a percentage of one CPU.
idle_rate() {
	paste <(tr '\t' '\n' <<<"$idle_before") <(tr '\t' '\n' <<<"$idle_after") |
		awk -v s="$idle_secs" 'NR == 1 || NR == 2 || NR == 5 { d += $2 - $1 } END { printf "%.1f%%", d * 100 / s }'
}

report >"$tmp/section.md"
if [[ -n $out_file ]]; then
	replace_section "$out_file" "On Slurm" "$tmp/section.md"
	log "wrote the On Slurm section of $out_file"
fi
cat "$tmp/section.md"
