package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"
)

// TestCompletionCandidates asks for the completions of command lines the
// way the shells do, with COMP_LINE and COMP_POINT (the cursor at the end),
// in a directory of known files and with a PATH of one program.
func TestCompletionCandidates(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"tasks.json", "tasks.ndjson", "hosts.txt", ".hidden", "sub/a.json", "sub/b.json", "sub/deep/y", "some dir/x", "bin/wpcmd"} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, nil, 0o755))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	t.Chdir(dir)
	t.Setenv("PATH", filepath.Join(dir, "bin"))

	longFlags := []string{"--binary", "--cleanup", "--completion", "--dry-run", "--events", "--fail-fast", "--grace", "--halt", "--heartbeat", "--help", "--infile", "--joblog", "--limit-cpu", "--limit-files", "--limit-fsize", "--limit-memory", "--line-buffer", "--max-output", "--max_threads", "--ndjson", "--nice", "--null", "--ordered", "--outfile", "--progress", "--push", "--push-clean", "--raw", "--remote-path", "--report", "--results", "--resume", "--resume-failed", "--retries", "--return", "--shuf", "--slurm", "--slurm-alloc", "--ssh", "--sshlogin", "--sshloginfile", "--stderr", "--tag", "--timeout", "--transfer", "--transferfile", "--trc", "--verbose", "--version"}
	longFlags = append(longFlags, "--arg-file", "--block", "--max-lines", "--pipe", "--pipepart", "--recend", "--recstart")
	longFlags = append(longFlags, "--memfree", "--load", "--delay", "--rate")
	longFlags = append(longFlags, "--cpus", "--memory", "--mem-capacity")
	allFlags := append([]string{"-0", "-S", "-V", "-h", "-i", "-k", "-o", "-t", "-v"}, longFlags...)
	allFlags = append(allFlags, "-L", "-a")
	longFlags = append(longFlags, "--colsep", "--context-replace", "--header", "--link", "--max-args", "--max-replace-args")
	allFlags = append(allFlags, "--colsep", "--context-replace", "--header", "--link", "--max-args", "--max-replace-args", "-N", "-X", "-n")
	here := []string{"./", ".hidden", "bin/", "empty/", "hosts.txt", "some dir/", "sub/", "tasks.json", "tasks.ndjson"}
	tests := []struct {
		line string // $DIR stands for the directory of the files, $BASE for its name
		want []string
	}{
		// Flags: their names and short names, but neither their aliases
		// (--jobs, --keep-order) nor the hidden flags (-j, -P, --agent).
		{"workerpool --max", []string{"--max-args", "--max-lines", "--max-output", "--max-replace-args", "--max_threads"}},
		{"workerpool   --max", []string{"--max-args", "--max-lines", "--max-output", "--max-replace-args", "--max_threads"}},
		{"workerpool -", allFlags},
		{"workerpool --", longFlags},
		{"workerpool --h", []string{"--halt", "--header", "--heartbeat", "--help"}},
		{"workerpool -t", []string{"-t"}},
		{"workerpool -V", []string{"-V"}},
		{"workerpool --j", []string{"--joblog"}},
		{"workerpool --keep", nil},
		{"workerpool -j", nil},
		{"workerpool --a", []string{"--arg-file"}}, // not the hidden --agent
		{"workerpool --V", nil},
		{"workerpool -v --nd", []string{"--ndjson"}},
		{"workerpool -t 4 --nd", []string{"--ndjson"}},
		{"workerpool --ndjson -", allFlags},
		{"workerpool --agent -", allFlags},
		{"workerpool -i tasks.json --r", []string{"--rate", "--raw", "--recend", "--recstart", "--remote-path", "--report", "--results", "--resume", "--resume-failed", "--retries", "--return"}},
		{"workerpool --stderr capture --st", []string{"--stderr"}},

		// Nothing completes the name of the program, the tasks argument,
		// or the value of a flag that is neither an enum nor a file.
		{"workerpool", nil},
		{"workerpool ", nil},
		{"workerpool x", nil},
		{"workerpool --ndjson ", nil},
		{"workerpool -i tasks.json ", nil},
		{"workerpool -t 4 ", nil},
		{"workerpool -t ", nil},
		{"workerpool --timeout ", nil},
		{"workerpool --max_threads=", nil},
		{"workerpool --ndjson=", nil},
		{"workerpool -S ", nil},
		{"workerpool --ssh ", nil},
		{"workerpool --jobs ", nil},
		{"workerpool -j ", nil},
		{"workerpool --agent ", nil},
		{"workerpool --no-such ", nil},

		// An enum's values, after a space or an "=".
		{"workerpool --stderr ", []string{"capture", "discard", "inherit"}},
		{"workerpool --stderr in", []string{"inherit"}},
		{"workerpool --stderr=", []string{"capture", "discard", "inherit"}},
		{"workerpool --stderr=di", []string{"discard"}},
		{"workerpool --stderr --", nil},
		{"workerpool --completion ", []string{"bash", "fish", "zsh"}},
		{"workerpool --completion=", []string{"bash", "fish", "zsh"}},
		{"workerpool --completion z", []string{"zsh"}},

		// Files: those that start with the word, directories with a "/",
		// and a directory that is the only match with what it holds.
		{"workerpool -i ", here},
		{"workerpool -i ta", []string{"tasks.json", "tasks.ndjson"}},
		{"workerpool --infile ta", []string{"tasks.json", "tasks.ndjson"}},
		{"workerpool --infile=ta", []string{"tasks.json", "tasks.ndjson"}},
		{"workerpool -i=ta", []string{"tasks.json", "tasks.ndjson"}},
		{"workerpool --sshloginfile h", []string{"hosts.txt"}},
		{"workerpool -i --", nil},
		{"workerpool -o sub/", []string{"sub/", "sub/a.json", "sub/b.json", "sub/deep/"}},
		{"workerpool --infile=sub/", []string{"sub/", "sub/a.json", "sub/b.json", "sub/deep/"}},
		{"workerpool -o su", []string{"sub/", "sub/a.json", "sub/b.json", "sub/deep/"}},
		{"workerpool -o sub/d", []string{"sub/deep/", "sub/deep/y"}},
		{"workerpool -o som", []string{"some dir/", "some dir/x"}},
		{"workerpool -o em", []string{"empty/"}},
		{"workerpool -o empty/", []string{"empty/"}},
		{"workerpool -o nosuch/x", nil},
		{"workerpool -o ./ta", []string{"./tasks.json", "./tasks.ndjson"}},
		{"workerpool -o ./", []string{"./", "./.hidden", "./bin/", "./empty/", "./hosts.txt", "./some dir/", "./sub/", "./tasks.json", "./tasks.ndjson"}},
		{"workerpool -o .", []string{"./", "./.hidden", "./bin/", "./empty/", "./hosts.txt", "./some dir/", "./sub/", "./tasks.json", "./tasks.ndjson"}},
		{"workerpool -o $DIR/ta", []string{"$DIR/tasks.json", "$DIR/tasks.ndjson"}},
		{"workerpool -o sub/..", nil},
		// A path is taken as typed: a name that starts with ".", and one
		// with ".." or "//" in it, complete as any other.
		{"workerpool -o .h", []string{".hidden"}},
		{"workerpool -o ../$BASE/ta", []string{"../$BASE/tasks.json", "../$BASE/tasks.ndjson"}},
		{"workerpool -o sub/../ta", []string{"sub/../tasks.json", "sub/../tasks.ndjson"}},
		{"workerpool -o sub//", []string{"sub//", "sub//a.json", "sub//b.json", "sub//deep/"}},
		{"workerpool --infile=a=b", nil},

		// After --, a program on PATH, then files.
		{"workerpool -- wp", []string{"wpcmd"}},
		{"workerpool --ndjson -- ", []string{"wpcmd"}},
		{"workerpool -- cat ta", []string{"tasks.json", "tasks.ndjson"}},
		{"workerpool -t 4 -- cat ", here},
		{"workerpool -- ./b", []string{"./bin/", "./bin/wpcmd"}},
		{"workerpool -- bin/", []string{"bin/", "bin/wpcmd"}},
		{"workerpool -- cat -- ta", []string{"tasks.json", "tasks.ndjson"}},
		{"workerpool -- --", nil},
	}
	vars := strings.NewReplacer("$DIR", dir, "$BASE", filepath.Base(dir))
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			line := vars.Replace(tt.line)
			t.Setenv("COMP_LINE", line)
			t.Setenv("COMP_POINT", strconv.Itoa(len(line)))
			var stdout, stderr bytes.Buffer
			require.NoError(t, run(t.Context(), nil, strings.NewReader(""), &stdout, &stderr))
			require.Empty(t, stderr.String())
			var want []string
			for _, w := range tt.want {
				want = append(want, vars.Replace(w))
			}
			var got []string
			if stdout.Len() > 0 {
				got = strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			}
			require.ElementsMatch(t, want, got)
		})
	}
}

// TestCompletionPredictors: every predictor tag names one that completions
// knows, as it completes an unknown one to nothing.
func TestCompletionPredictors(t *testing.T) {
	parser, err := kong.New(&cli{})
	require.NoError(t, err)
	for _, f := range parser.Model.Flags {
		require.Contains(t, []string{"", "file"}, f.Tag.Get("predictor"), "--%s", f.Name)
	}
}

// TestCompletionCursorWords: which words of a command line come before the
// cursor, COMP_POINT.
func TestCompletionCursorWords(t *testing.T) {
	tests := []struct {
		line, point string
		words       []string
	}{
		{line: "workerpool --max", words: []string{"--max"}},
		{line: "workerpool -- ", words: []string{"--", ""}},
		{line: "workerpool -t 4 --  echo {} ", words: []string{"-t", "4", "--", "echo", "{}", ""}},
		{line: "workerpool -- ech --max", point: "17", words: []string{"--", "ech"}},
		{line: "workerpool -- ech", point: "12", words: []string{"-"}},
		{line: "workerpool -- ech", point: "junk", words: []string{"--", "ech"}},
		{line: "workerpool -- ech", point: "99", words: []string{"--", "ech"}},
		{line: "workerpool -- ech", point: "-1", words: []string{"--", "ech"}},
		{line: "workerpool ", words: []string{""}},
		{line: "workerpool"},
		{line: ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.words, cursorWords(tt.line, tt.point), "%q at %q", tt.line, tt.point)
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
