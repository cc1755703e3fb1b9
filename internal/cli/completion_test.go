package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCompletionCommandWords: which words of a command line are the
// command after "--", up to the cursor.
func TestCompletionCommandWords(t *testing.T) {
	tests := []struct {
		line, point string
		words       []string // nil: not past a "--"
	}{
		{line: "workerpool --max"},
		{line: "workerpool --"},
		{line: "workerpool -- ", words: []string{""}},
		{line: "workerpool -- ech", words: []string{"ech"}},
		{line: "workerpool -t 4 --  echo {} ", words: []string{"echo", "{}", ""}},
		{line: "workerpool -- cat -- x", words: []string{"cat", "--", "x"}},
		{line: "workerpool -- ech --max", point: "17", words: []string{"ech"}},
		{line: "workerpool -- ech", point: "12"},
		{line: "workerpool -- ech", point: "junk", words: []string{"ech"}},
		{line: "--"},
	}
	for _, tt := range tests {
		words, ok := commandWords(tt.line, tt.point)
		require.Equal(t, tt.words != nil, ok, "%q at %q", tt.line, tt.point)
		require.Equal(t, tt.words, words, "%q at %q", tt.line, tt.point)
	}
}

// TestCompletionScriptQuoting runs the code --completion prints in the
// shells that are installed, for a binary whose path needs quoting: the
// shell must run that very file.
func TestCompletionScriptQuoting(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in binary is a shell script, its path one Windows refuses")
	}
	dir := filepath.Join(t.TempDir(), `it's a $dir "x" \ *`)
	require.NoError(t, os.Mkdir(dir, 0o755))
	bin := filepath.Join(dir, "workerpool")
	// The stand-in answers with one completion that says what the shell
	// passed it: the word, COMP_LINE, COMP_POINT, the number of arguments.
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho \"ech|$COMP_LINE|$COMP_POINT|$#\"\n"), 0o755))

	run := func(t *testing.T, shell string, args ...string) string {
		path, err := exec.LookPath(shell)
		if err != nil {
			t.Skipf("no %s", shell)
		}
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	t.Run("bash", func(t *testing.T) {
		out := run(t, "bash", "-c", completionScript("bash", bin)+
			`COMP_LINE='workerpool -- ech'; COMP_POINT=17; _workerpool_complete; printf '%s\n' "${COMPREPLY[@]}"`)
		require.Equal(t, "ech|workerpool -- ech|17|0\n", out)
	})
	t.Run("zsh", func(t *testing.T) {
		out := run(t, "zsh", "-f", "-c", `compdef() { :; }; `+completionScript("zsh", bin)+
			`COMP_LINE='workerpool -- ech'; COMP_POINT=17; compgen -F _workerpool_complete -- x`)
		require.Equal(t, "ech|workerpool -- ech|17|0\n", out)
	})
	t.Run("fish", func(t *testing.T) {
		out := run(t, "fish", "--no-config", "-c", completionScript("fish", bin)+`complete -C 'workerpool -- ech'`)
		require.Equal(t, "ech|workerpool -- ech||0\n", out)
	})
}
