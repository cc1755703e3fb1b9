#!/usr/bin/env bash
# pipeline.sh generates tasks in the shell, runs them through
# workerpool --ndjson, and turns the results into a table with jq.
#
#   ./pipeline.sh [COUNT]
#
# Runs COUNT (default 6) worker.php jobs, the first ones sleeping longest;
# every third one exits with 3. Prints one row per job as it finishes (so in
# completion order, not input order), then a summary of the failures, and
# exits with workerpool's status: 0 if every job succeeded, 1 if any failed.
# workerpool is $WORKERPOOL if set, else the one on PATH, else ../bin/workerpool.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
workerpool=${WORKERPOOL:-$(command -v workerpool || echo "$here/../bin/workerpool")}
count=${1:-6}
results=$(mktemp)
trap 'rm -f "$results"' EXIT

status=0
seq "$count" |
	jq -c --arg dir "$here" --argjson count "$count" '"job-\(.)" as $id | {
		identifier: $id,
		command: "php",
		args: ["worker.php", $id, "\(($count - .) * 100)", (if . % 3 == 0 then "3" else "0" end)],
		dir: $dir,
		meta: {n: .}
	}' |
	"$workerpool" --ndjson -t 4 |
	tee "$results" |
	jq -r --unbuffered '[.identifier, "exit=\(.exit_code)", "\(.duration_ms // 0 | floor)ms",
		(.error // (if .exit_code == 0 then .result_body | fromjson? | .greeting else .stderr end) // ""
		| rtrimstr("\n"))] | @tsv' ||
	status=$?

jq -s -r '(map(select(.exit_code != 0)) | sort_by(.meta.n)) as $failed |
	"ok: \(length - ($failed | length)) of \(length), failed: " +
	if $failed == [] then "none" else $failed | map("\(.identifier) (exit \(.exit_code))") | join(", ") end' "$results"
exit "$status"
