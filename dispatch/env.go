package dispatch

import (
	"runtime"
	"strings"
)

// hasEnvKey reports whether extra sets the variable named k: by its exact
// name, or on Windows, where names are not case-sensitive, in any case.
func hasEnvKey(extra map[string]string, k string) bool {
	if _, ok := extra[k]; ok {
		return true
	}
	if runtime.GOOS == "windows" {
		for e := range extra {
			if strings.EqualFold(e, k) {
				return true
			}
		}
	}
	return false
}

// env returns the child's environment: the pool's, read once, with the
// variables of extra in place of the pool's of the same names.
func (l *Local) env(extra map[string]string) []string {
	if len(extra) == 0 {
		return l.environ
	}
	env := make([]string, 0, len(l.environ)+len(extra))
	for _, kv := range l.environ {
		if k, _, _ := strings.Cut(kv, "="); k == "" || !hasEnvKey(extra, k) {
			env = append(env, kv) // a key "" is Windows' "=C:=C:\dir"
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}
