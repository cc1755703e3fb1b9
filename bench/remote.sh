#!/usr/bin/env bash
# bench/remote.sh is `make bench-remote`: it measures the many-machines mode
# (-S 8/HOST over OpenSSH) against a local run (-t 8) and GNU parallel -S,
# with this machine playing the remote host through a throwaway sshd on
# 127.0.0.1, and prints a markdown section, "## Many machines". `make bench`
# (bench/run.sh) appends the same section to its report.
#
# It installs what it needs from Debian's packages when missing (OpenSSH's
# server, GNU parallel, hyperfine, jq). Timings are hyperfine medians over
# BENCH_REMOTE_RUNS rounds; each round runs every contender once, one after
# the other, so that a change in the machine's load hits all of them alike.
# The sshd, its keys and configuration, the inputs and the workerpool built
# for the run live in a temporary directory, removed at exit with the sshd.
#
# The sshd sets SHLVL=1 in its sessions, so that bash does not read
# ~/.bashrc for the commands ssh runs: the remote PATH is the one given, and
# a heavy .bashrc (root's here runs `pyenv init`, about 0.6 s a login) does
# not weigh on GNU parallel, which logs in once per task.
#
# CPU is counted on both sides: hyperfine's user + system time of the timed
# command and its children (the side that sends the tasks; workerpool is a
# child subreaper, so the ssh connection master it starts, which detaches,
# comes back to it and is counted there), and the CPU of everything the
# sshd ran for it (sessions, agents or shells, tasks), read from the sshd's
# reaped-children times.
#
# Knobs (environment):
#   BENCH_REMOTE_TASKS=2000          tasks per local and remote run
#   BENCH_REMOTE_RUNS=5              rounds of the timed runs (median reported)
#   BENCH_REMOTE_PARALLEL_TASKS=200  tasks per GNU parallel -S run (it is much
#                                    slower; it is compared by tasks/s)
#   BENCH_REMOTE_PARALLEL_RUNS=1     rounds that include GNU parallel
#   BENCH_REMOTE_OUT                 when set, a file (relative to the repo)
#                                    whose "## Many machines" section is
#                                    replaced by the new one, or gets it
#                                    appended; unset, the section only goes
#                                    to stdout
#
# shellcheck disable=SC2016 # backquotes in printf formats are markdown
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

tasks=${BENCH_REMOTE_TASKS:-2000}
runs=${BENCH_REMOTE_RUNS:-5}
par_tasks=${BENCH_REMOTE_PARALLEL_TASKS:-200}
par_runs=${BENCH_REMOTE_PARALLEL_RUNS:-1}
out_file=${BENCH_REMOTE_OUT:-}
slots=8
# A timed run that takes longer than this is taken to hang: it is killed
# and the bench fails.
run_limit=1800

log() { printf 'bench-remote: %s\n' "$*" >&2; }

# shellcheck source=bench/tools.sh
source bench/tools.sh
ensure_tools /usr/sbin/sshd:openssh-server ssh-keygen:openssh-client parallel:parallel hyperfine:hyperfine jq:jq
command -v go >/dev/null || { log "go is needed to build workerpool"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wpremote.XXXXXX")
sshd_pid=
# cleanup stops the sshd (and any session it still has) by pid, then
# removes the temporary directory.
cleanup() {
	if [[ -n $sshd_pid ]]; then
		local kids
		kids=$(ps -o pid= --ppid "$sshd_pid" 2>/dev/null || true)
		# shellcheck disable=SC2086 # one pid a word
		kill "$sshd_pid" $kids 2>/dev/null || true
		wait "$sshd_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
# The timed commands get $tmp/t as TMPDIR, so that what they leave there
# (workerpool's control-socket directories, wp-ssh-*) can be seen, and a
# connection master left running names $tmp in its process title.
mkdir -p "$tmp/bin" "$tmp/hf" "$tmp/t"

log "building workerpool in $tmp/bin"
go build -o "$tmp/bin/workerpool" .
wp=$tmp/bin/workerpool

# --- sshd on 127.0.0.1 ------------------------------------------------------
ssh-keygen -q -t ed25519 -N "" -C bench-host -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N "" -C bench-client -f "$tmp/client_key"
cp "$tmp/client_key.pub" "$tmp/authorized_keys"
if [[ ! -d /run/sshd ]]; then
	mkdir -p /run/sshd 2>/dev/null || log "cannot create /run/sshd (sshd may refuse to start)"
fi

# port_open PORT succeeds when something accepts connections on it.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_sshd PORT starts the sshd on PORT and waits (at most 10 s) until it
# accepts connections; it fails when the sshd does not get there.
start_sshd() {
	local port=$1 i
	cat >"$tmp/sshd_config" <<-EOF
		ListenAddress 127.0.0.1:$port
		HostKey $tmp/host_key
		AuthorizedKeysFile $tmp/authorized_keys
		PidFile $tmp/sshd.pid
		StrictModes no
		UsePAM no
		PermitRootLogin yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		MaxSessions 100
		MaxStartups 200
		SetEnv PATH=$tmp/bin:/usr/local/bin:/usr/bin:/bin SHLVL=1
	EOF
	/usr/sbin/sshd -D -e -f "$tmp/sshd_config" 2>"$tmp/sshd.log" &
	sshd_pid=$!
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$sshd_pid" 2>/dev/null; then
			wait "$sshd_pid" 2>/dev/null || true
			sshd_pid=
			return 1
		fi
		port_open "$port" && return 0
		sleep 0.1
	done
	kill "$sshd_pid" 2>/dev/null || true
	wait "$sshd_pid" 2>/dev/null || true
	sshd_pid=
	return 1
}

# A random high port that nothing listens on; should another program take
# it before the sshd does, the sshd fails to bind and another is tried.
port=
for ((try = 0; try < 10; try++)); do
	p=$((20000 + RANDOM % 40000))
	port_open "$p" && continue
	if start_sshd "$p"; then
		port=$p
		break
	fi
done
[[ -n $port ]] || { log "could not start sshd:"; cat "$tmp/sshd.log" >&2; exit 1; }
log "sshd (pid $sshd_pid) listening on 127.0.0.1:$port"

echo "[127.0.0.1]:$port $(cat "$tmp/host_key.pub")" >"$tmp/known_hosts"
cat >"$tmp/ssh_config" <<EOF
Host bench
	HostName 127.0.0.1
	Port $port
	User $(id -un)
	IdentityFile $tmp/client_key
	IdentitiesOnly yes
	UserKnownHostsFile $tmp/known_hosts
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes
	LogLevel ERROR
EOF
cfg=$tmp/ssh_config
ssh_cmd="ssh -F $(printf '%q' "$cfg")"

log "checking ssh -F $cfg bench"
timeout 30 ssh -F "$cfg" -o ConnectTimeout=10 bench true ||
	{ log "ssh to the bench sshd failed; its log:"; cat "$tmp/sshd.log" >&2; exit 1; }
remote_wp=$(timeout 30 ssh -F "$cfg" -o ConnectTimeout=10 bench 'command -v workerpool' || true)
[[ $remote_wp == "$wp" ]] ||
	{ log "the remote PATH finds workerpool at '${remote_wp}', not $wp (does the login shell reset PATH?)"; exit 1; }

# --- inputs -----------------------------------------------------------------
repeat() { yes "$2" | head -n "$1" || true; }
repeat "$tasks" '{"command":"/bin/true"}' >"$tmp/true.ndjson"
repeat 1 '{"command":"/bin/true"}' >"$tmp/one.ndjson"
repeat 20 '{"command":"/bin/true"}' >"$tmp/check.ndjson"
repeat "$par_tasks" hello >"$tmp/lines-par"

# A check before timing (and a warm-up): every task runs and exits 0.
log "checking the remote mode with 20 tasks"
got=$(TMPDIR=$tmp/t timeout 120 "$wp" --ndjson -S "$slots/bench" --ssh "$ssh_cmd" <"$tmp/check.ndjson" | jq -s '[.[] | select(.exit_code == 0)] | length')
[[ $got == 20 ]] || { log "remote check: $got of 20 tasks exited 0"; exit 1; }

# --- timed runs -------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
contenders=(local remote setup parallel)
declare -A cmds ntasks
cmds[local]="$wp --ndjson -t $slots <$tmp/true.ndjson >/dev/null"
cmds[remote]="$wp --ndjson -S $slots/bench --ssh \"$ssh_cmd\" <$tmp/true.ndjson >/dev/null"
cmds[setup]="$wp --ndjson -S $slots/bench --ssh \"$ssh_cmd\" <$tmp/one.ndjson >/dev/null"
cmds[parallel]="parallel --will-cite -S $slots/bench --ssh \"$ssh_cmd\" true :::: $tmp/lines-par >/dev/null"
ntasks=([local]=$tasks [remote]=$tasks [setup]=1 [parallel]=$par_tasks)

ticks=$(getconf CLK_TCK)
# sshd_cpu prints the CPU ticks (user + system) of the sshd's children that
# have ended and been waited for: sessions and all they ran.
sshd_cpu() {
	local s f
	s=$(<"/proc/$sshd_pid/stat")
	s=${s##*) }
	read -ra f <<<"$s"
	echo $((f[13] + f[14])) # fields 16 and 17, cutime and cstime
}
# wait_sessions waits (at most 10 s) until the sshd has no session left, so
# that their CPU is counted; it fails when one is left.
wait_sessions() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -z $(ps -o pid= --ppid "$sshd_pid") ]] && return 0
		sleep 0.1
	done
	return 1
}

# times.tsv collects "name<TAB>wall<TAB>user<TAB>system<TAB>sshd cpu<TAB>round".
: >"$tmp/times.tsv"
lingering=()
for ((round = 1; round <= runs; round++)); do
	mapfile -t names < <(round_order "$round" "$par_runs" "${contenders[@]}")
	for name in "${names[@]}"; do
		log "round $round/$runs: $name (${ntasks[$name]} tasks)"
		wait_sessions || true
		before=$(sshd_cpu)
		TMPDIR=$tmp/t timeout -k 10 "$run_limit" hyperfine --runs 1 --style none --export-json "$tmp/hf/$name-$round.json" \
			-n "$name" "${cmds[$name]}" >>"$tmp/hyperfine.log" 2>&1 ||
			{ cat "$tmp/hyperfine.log" >&2; exit 1; }
		if ! wait_sessions; then
			log "sshd sessions still open 10 s after $name ended"
			lingering+=("$name (round $round)")
		fi
		after=$(sshd_cpu)
		jq -r --arg r "$round" --arg c "$(awk "BEGIN { print ($after - $before) / $ticks }")" \
			'.results[] | [.command, .times[0], .user, .system, $c, $r] | @tsv' \
			"$tmp/hf/$name-$round.json" >>"$tmp/times.tsv"
	done
done

# Processes still running the workerpool built here, or with the
# temporary directory on their command line, other than the sshd.
leftovers() {
	local p pid exe args
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[[ $pid == "$sshd_pid" || $pid == "$$" || $pid == "$BASHPID" ]] && continue
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
control_dirs=$(find "$tmp/t" -mindepth 1 -maxdepth 1 -name 'wp-ssh-*' | wc -l)

# --- report -----------------------------------------------------------------
# median NAME [COLUMN] prints the median wall time in seconds, or of another
# column of times.tsv (7 is user + system, 5 the sshd side).
median() {
	awk -F'\t' -v n="$1" -v c="${2:-2}" '$1 == n { print (c == 7 ? $3 + $4 : $c) }' "$tmp/times.tsv" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo '**missed**'; fi; }

report() {
	local s_local s_remote s_setup s_par r_local r_remote r_par
	s_local=$(median local) s_remote=$(median remote) s_setup=$(median setup) s_par=$(median parallel)
	r_local=$(calc '%f' "$tasks / $s_local") r_remote=$(calc '%f' "$tasks / $s_remote")
	r_par=$(calc '%f' "$par_tasks / $s_par")
	echo "## Many machines"
	echo
	echo "Written by \`make bench-remote\` (bench/remote.sh). The many-machines mode (\`-S $slots/HOST\`)"
	echo "reaches one throwaway sshd on 127.0.0.1: this machine is also the remote host, so the"
	echo "tasks, the agent, ssh's encryption and the sending side share its CPUs. Each contender runs"
	echo "\`/bin/true\` tasks, $slots at a time, its output to /dev/null. Times are hyperfine medians over $runs"
	echo "rounds (GNU parallel: $par_runs), each round running every contender once; the remote runs"
	echo "include connecting and starting the agent, which the 1-task run shows alone. The sshd sets"
	echo "SHLVL=1, so that bash skips ~/.bashrc for ssh's commands: a heavy one would weigh on every"
	echo "login, which GNU parallel makes once per task and workerpool once per host."
	echo
	echo "Machine: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), $(ssh -V 2>&1),"
	echo "$(hyperfine --version), $(parallel --version | head -1); load average $load_before before,"
	echo "$load_after after ($((finished - started)) s)."
	echo
	echo "| contender | tasks | median wall | tasks/s | ratio (remote tasks/s ÷ this) |"
	echo "|---|---|---|---|---|"
	printf '| workerpool `-t %s` (local) | %s | %.2f s | %.0f | %.2fx |\n' "$slots" "$tasks" "$s_local" "$r_local" \
		"$(calc '%f' "$r_remote / $r_local")"
	printf '| workerpool `-S %s/bench` (remote) | %s | %.2f s | %.0f | 1.00x |\n' "$slots" "$tasks" "$s_remote" "$r_remote"
	printf '| GNU parallel `-S %s/bench` | %s | %.2f s | %.1f | %.1fx |\n' "$slots" "$par_tasks" "$s_par" "$r_par" \
		"$(calc '%f' "$r_remote / $r_par")"
	echo
	printf 'Set-up: a 1-task remote run (connect, start the agent, run one task, close) takes %.2f s;\n' "$s_setup"
	printf 'without it the %s-task remote run does %.0f tasks/s.\n' "$tasks" \
		"$(awk "BEGIN { d = $s_remote - $s_setup; if (d <= 0) d = $s_remote; printf \"%f\", $tasks / d }")"
	echo
	echo "- remote ≥ 0.7x local throughput: $(calc '%.2fx' "$r_remote / $r_local") ($(met "$r_remote >= 0.7 * $r_local"))"
	echo "- remote ≥ 30x GNU parallel -S: $(calc '%.1fx' "$r_remote / $r_par") ($(met "$r_remote >= 30 * $r_par"))"
	echo
	echo "CPU per task (median user + system): the sending side is the timed command and its children"
	echo "(hyperfine), ssh's client side included (workerpool is a child subreaper: the connection master"
	echo "that ssh detaches comes back to it); the sshd side is everything the sshd ran for the run"
	echo "(sessions, the agent or GNU parallel's shells, the tasks), from the sshd's reaped-children times."
	echo
	echo "| contender | sending side | sshd side | total |"
	echo "|---|---|---|---|"
	local name label n c_send c_sshd line
	for name in local remote setup parallel; do
		case $name in
		local) label="workerpool \`-t $slots\` (local)" ;;
		remote) label="workerpool \`-S $slots/bench\` (remote)" ;;
		setup) label="workerpool \`-S $slots/bench\`, 1 task (set-up)" ;;
		parallel) label="GNU parallel \`-S $slots/bench\`" ;;
		esac
		n=${ntasks[$name]}
		c_send=$(median "$name" 7) c_sshd=$(median "$name" 5)
		printf '| %s | %.2f ms | %.2f ms | %.2f ms |\n' "$label" \
			"$(calc '%f' "$c_send * 1000 / $n")" "$(calc '%f' "$c_sshd * 1000 / $n")" \
			"$(calc '%f' "($c_send + $c_sshd) * 1000 / $n")"
	done
	echo
	if [[ -z $left && ${#lingering[@]} == 0 && $control_dirs == 0 ]]; then
		echo "Left behind after the runs: nothing (no process of this workerpool or with its temporary"
		echo "directory in its command line, no sshd session still open, no wp-ssh-* directory)."
	else
		echo "Left behind after the runs:"
		[[ -z $left ]] || while read -r line; do echo "- process $line"; done <<<"$left"
		((${#lingering[@]} == 0)) || printf -- '- an sshd session still open 10 s after: %s\n' "${lingering[@]}"
	fi
	((control_dirs == 0)) || echo "- $control_dirs of workerpool's control-socket directories (wp-ssh-*) in its TMPDIR"
	echo
	echo "### Every timed run"
	echo
	echo "| contender | round | wall | user | system | sshd side |"
	echo "|---|---|---|---|---|---|"
	sort -t$'\t' -k1,1 -k6,6n "$tmp/times.tsv" |
		awk -F'\t' '{ printf "| %s | %s | %.2f s | %.2f s | %.2f s | %.2f s |\n", $1, $6, $2, $3, $4, $5 }'
	echo
	echo "### Commands"
	echo
	echo "\$TMP is the temporary directory; \$TMP/ssh_config names the sshd as host \`bench\`."
	echo
	for name in local remote setup parallel; do
		printf -- '- %s: `%s`\n' "$name" "${cmds[$name]//$tmp/\$TMP}"
	done
}

report >"$tmp/section.md"
if [[ -n $out_file ]]; then
	replace_section "$out_file" "Many machines" "$tmp/section.md"
	log "wrote the Many machines section of $out_file"
fi
cat "$tmp/section.md"
