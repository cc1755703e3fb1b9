# bench/tools.sh is sourced by the bench scripts. ensure_tools CMD:PKG...
# installs, from Debian's packages, the package of each command that is
# missing (CMD a name on PATH or an absolute path); log must be defined.
ensure_tools() {
	local need=() cmd pkg pair
	for pair in "$@"; do
		cmd=${pair%%:*} pkg=${pair#*:}
		command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
	done
	((${#need[@]})) || return 0
	log "installing ${need[*]}"
	local sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null || { log "need root or sudo to install ${need[*]}"; exit 1; }
		sudo=(sudo)
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

# replace_section FILE HEADING NEW replaces the section of FILE that starts
# with the line "## HEADING" (up to the next "## " heading or the end) with
# the contents of NEW, or appends NEW when FILE has no such section; the
# rest of FILE stays as it is.
replace_section() {
	local file=$1 heading=$2 new=$3
	touch "$file"
	awk -v new="$new" -v heading="## $heading" '
		function emit(   line) {
			while ((getline line < new) > 0) print line
			close(new)
			done = 1
		}
		{ plain = $0; sub(/[[:space:]]+$/, "", plain) }
		plain == heading { if (!done) emit(); skip = 1; next }
		skip && /^## / { skip = 0; print "" }
		!skip { print; last = $0 }
		END {
			if (!done) {
				if (NR > 0 && last != "") print ""
				emit()
			}
		}
	' "$file" >"$new.out"
	cat "$new.out" >"$file"
	rm -f "$new.out"
}

# round_order ROUND PAR_RUNS NAME... prints the contenders of round ROUND,
# one a line: every NAME but parallel, which runs in the first PAR_RUNS
# rounds only, in turn, round r starting with the (r-1)th, so that no
# contender always runs right after the same one.
round_order() {
	local round=$1 par_runs=$2 names=() name i
	shift 2
	for name in "$@"; do
		[[ $name == parallel && $round -gt $par_runs ]] && continue
		names+=("$name")
	done
	for ((i = 0; i < ${#names[@]}; i++)); do
		echo "${names[(i + round - 1) % ${#names[@]}]}"
	done
}
