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
