#!/usr/bin/env bash
# bench/pipe.sh is `make bench-pipe`: it cuts a generated input of 1 GiB
# into chunks and runs a command on each, through workerpool --pipe (the
# input on stdin), workerpool --pipepart -a FILE, GNU parallel --pipe and
# GNU parallel --pipepart -a FILE, all at -j 8 with the same --block, and
# prints a markdown section, "## --pipe": each one's throughput (the
# input's size over the wall time), peak RSS and CPU time, as GNU time
# tells them: the CPU of the pool and its tasks together, and the peak RSS
# of the largest of them, which with these small tasks is the pool. The pool's peak RSS must
# stay under 100 MB: the bench fails when it does not.
#
# It installs what it needs from Debian's packages when missing (GNU
# parallel, GNU time). Each round runs every contender once, one after the
# other, never two at once, starting with a different one each round.
# Every run's output is checked: the counts its tasks print add up to the
# input's lines (wc -l) or it has a line per chunk (md5sum), or the bench
# fails. The input, the outputs and the workerpool built for the run live
# in a temporary directory, removed at exit.
#
# Knobs (environment):
#   BENCH_PIPE_SIZE=1G        the input's size (a size as head -c reads it)
#   BENCH_PIPE_BLOCK=1M       --block of every contender
#   BENCH_PIPE_JOBS=8         -j of every contender
#   BENCH_PIPE_CMD='wc -l'    the command each chunk is the stdin of:
#                             'wc -l' or 'md5sum'
#   BENCH_PIPE_RUNS=1         rounds (medians reported)
#   BENCH_PIPE_OUT            when set, a file (relative to the repo) whose
#                             "## --pipe" section is replaced by the new one,
#                             or gets it appended; unset, the section only
#                             goes to stdout
#
# shellcheck disable=SC2016 # backquotes in printf formats are markdown
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

size=${BENCH_PIPE_SIZE:-1G}
block=${BENCH_PIPE_BLOCK:-1M}
jobs=${BENCH_PIPE_JOBS:-8}
command_words=${BENCH_PIPE_CMD:-wc -l}
runs=${BENCH_PIPE_RUNS:-1}
out_file=${BENCH_PIPE_OUT:-}
max_rss_kib=$((100 * 1000 * 1000 / 1024)) # 100 MB

log() { printf 'bench-pipe: %s\n' "$*" >&2; }

case $command_words in
'wc -l' | md5sum) ;;
*)
	log "BENCH_PIPE_CMD must be 'wc -l' or md5sum, not '$command_words'"
	exit 2
	;;
esac

# shellcheck source=bench/tools.sh
source bench/tools.sh
ensure_tools parallel:parallel /usr/bin/time:time
command -v go >/dev/null || { log "go is needed to build workerpool"; exit 1; }
[[ -n ${EPOCHREALTIME:-} ]] || { log "bash 5 or newer is needed (EPOCHREALTIME)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wppipe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

log "building workerpool in $tmp"
go build -o "$tmp/workerpool" .
wp=$tmp/workerpool

# The input: lines of 1 to 120 bytes, their lengths varying, so that
# records cross the blocks at every offset.
log "writing $size of input"
awk 'BEGIN { s = "abcdefghijklmnopqrstuvwxyz0123456789"; while (length(s) < 120) s = s s
	for (i = 0; ; i++) print substr(s, 1, i * 7919 % 120) }' | head -c "$size" >"$tmp/input" || true
bytes=$(stat -c %s "$tmp/input")
lines=$(wc -l <"$tmp/input")
read -ra cmd_words <<<"$command_words"

contenders=(workerpool-pipe workerpool-pipepart parallel-pipe parallel-pipepart)
declare -A cmds
cmds[workerpool-pipe]="$wp --raw -j $jobs --pipe --block $block -- ${cmd_words[*]} <$tmp/input"
cmds[workerpool-pipepart]="$wp --raw -j $jobs --pipepart -a $tmp/input --block $block -- ${cmd_words[*]} </dev/null"
cmds[parallel-pipe]="parallel --will-cite -j $jobs --pipe --block $block ${cmd_words[*]} <$tmp/input"
cmds[parallel-pipepart]="parallel --will-cite -j $jobs --pipepart -a $tmp/input --block $block ${cmd_words[*]} </dev/null"

# check NAME OUT says whether the output of a run is whole.
check() {
	local name=$1 out=$2 got
	if [[ $command_words == 'wc -l' ]]; then
		got=$(awk '{ n += $1 } END { print n + 0 }' "$out")
		[[ $got == "$lines" ]] || { log "$name: the counts add up to $got lines, not $lines"; return 1; }
	else
		got=$(grep -c ' -$' "$out" || true)
		((got > 0)) || { log "$name: no chunk's sum"; return 1; }
	fi
}

# runs.tsv collects, for every run: name, round, wall seconds, peak RSS
# KiB, user s, system s, chunks (output lines).
: >"$tmp/runs.tsv"
for ((round = 1; round <= runs; round++)); do
	mapfile -t order < <(round_order "$round" "$runs" "${contenders[@]}")
	for name in "${order[@]}"; do
		log "round $round: $name"
		start=$EPOCHREALTIME
		status=0
		/usr/bin/time -f '%M %U %S' -o "$tmp/$name.time" bash -c "exec ${cmds[$name]}" >"$tmp/$name.out" 2>"$tmp/$name.err" || status=$?
		end=$EPOCHREALTIME
		if ((status != 0)); then
			log "$name exited $status:"
			head -5 "$tmp/$name.err" >&2
			exit 1
		fi
		check "$name" "$tmp/$name.out" || exit 1
		read -r rss user sys <"$tmp/$name.time"
		wall=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$wall" "$rss" "$user" "$sys" "$(wc -l <"$tmp/$name.out")" >>"$tmp/runs.tsv"
	done
done

# median NAME COLUMN prints the median of a column of NAME's runs.
median() {
	awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$tmp/runs.tsv" | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

section=$tmp/section.md
{
	printf '## --pipe\n\n'
	printf 'A generated input of %s MiB (%s lines of 0 to 119 bytes) cut into chunks of `--block %s` at line ends, each the stdin of `%s`, at `-j %s`: ' \
		"$((bytes >> 20))" "$lines" "$block" "$command_words" "$jobs"
	printf 'workerpool `--raw --pipe` (the input on stdin) and `--raw --pipepart -a FILE`, GNU parallel `--pipe` and `--pipepart -a FILE`. '
	printf 'Throughput is the input'"'"'s size over the wall time. GNU time gives the CPU time of the pool and its tasks together, and the peak RSS of the largest of them, the pool'"'"'s here. '
	printf '%s on %s CPUs, %s; median of %s run(s) each (`make bench-pipe`, bench/pipe.sh).\n\n' \
		"$(uname -sm)" "$(nproc)" "$(parallel --version | head -1)" "$runs"
	printf '| contender | wall s | MB/s | peak RSS MB | CPU s (user+sys) | chunks |\n|---|---:|---:|---:|---:|---:|\n'
	for name in "${contenders[@]}"; do
		wall=$(median "$name" 3)
		awk -v n="$name" -v w="$wall" -v b="$bytes" -v r="$(median "$name" 4)" -v u="$(median "$name" 5)" -v s="$(median "$name" 6)" -v c="$(median "$name" 7)" \
			'BEGIN { printf "| %s | %.2f | %.0f | %.1f | %.2f | %d |\n", n, w, b / 1e6 / w, r * 1024 / 1e6, u + s, c }'
	done
} >"$section"
cat "$section"
if [[ -n $out_file ]]; then
	replace_section "$out_file" "--pipe" "$section"
	log "wrote the section to $out_file"
fi

for name in workerpool-pipe workerpool-pipepart; do
	rss=$(median "$name" 4)
	if ((rss > max_rss_kib)); then
		log "$name: peak RSS $((rss / 1024)) MiB, over 100 MB"
		exit 1
	fi
done
