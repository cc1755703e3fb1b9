package dispatch

import (
	"os/exec"
	"path/filepath"
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

// programPath is the file that path names when started in dir: path
// itself, but on Windows, where a path without an extension names the
// first of PATHEXT's that exists, as the command line would find it.
func programPath(path, dir string) string {
	if runtime.GOOS != "windows" || filepath.Ext(path) != "" {
		return path
	}
	full := path
	if dir != "" && !filepath.IsAbs(path) {
		full = filepath.Join(dir, path)
	}
	found, err := exec.LookPath(full)
	if err != nil {
		return path // the start fails, and says why
	}
	return path + filepath.Ext(found)
}
