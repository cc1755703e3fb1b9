//go:build linux

package e2e

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// argsFiles are the files the cases of TestArgsLikeParallel read, in the
// directory they run in.
var argsFiles = map[string]string{
	"f1":         "f1\nf2\n",
	"f2":         "g1\ng2\ng3\n",
	"people.csv": "name,age\nann,31\nbob,42\n",
	"cols.csv":   "a,b\nc,d\n",
	"paths":      "d/a.x\n/e/f/b.tar.gz\nc\n",
	"nul":        "a b\x00c\nd\x00e\x00",
}

// argsCases run the same command through GNU parallel and workerpool. args
// are the words after the command's flags: parallel gets them as they are,
// workerpool with a "--" before the command (the first word that is not a
// flag).
var argsCases = []struct {
	name  string
	flags []string // for both, before the command
	args  []string
	stdin string
	tag   bool // compare --tag output rather than --raw
}{
	{name: ":::", args: []string{"echo", "{}", ":::", "a", "b c", "d"}},
	{name: "::: does not read stdin", args: []string{"echo", ":::", "a"}, stdin: "not read\n"},
	{name: "product", args: []string{"echo", "{1}-{2}", "{}", ":::", "a", "b", ":::", "1", "2", "3"}},
	{name: "product appended as words", args: []string{"printf", "[%s].", ":::", "a", "b", ":::", "1 x", "2"}},
	{name: "{} of several as words of their own", args: []string{"printf", "[%s]", "x{}y", "{/}", ":::", "d/a", ":::", "e/1"}},
	{name: "::::", args: []string{"echo", "{1}", "{2}", "::::", "f1", "f2"}},
	{name: "-a FILE is the first source", flags: []string{"-a", "f1"}, args: []string{"echo", ":::", "x", "y"}},
	{name: ":::: - is stdin", args: []string{"echo", "{1}", "{2}", "::::", "-", ":::", "x", "y"}, stdin: "s1\ns2\n"},
	{name: ":::+ pairs, shortest wins", args: []string{"echo", "{1}", "{2}", "{3}", ":::", "a", "b", "c", ":::+", "1", "2", ":::", "x", "y"}},
	{name: "::::+", args: []string{"echo", "::::", "f1", "::::+", "f2"}},
	{name: "--link wraps", flags: []string{"--link"}, args: []string{"echo", ":::", "a", "b", "c", ":::", "1", "2", ":::", "x", "y", "z", "w"}},
	{name: "--link over :::+", flags: []string{"--link"}, args: []string{"echo", ":::", "a", "b", "c", ":::", "1", "2", ":::+", "x", "y", "z", "w"}},
	{name: "positional path forms", args: []string{"echo", "{1/}", "{1//}", "{1.}", "{1/.}", "{2/}", "{-1}", "{-2.}", "{3}x", ":::", "d/a.x", "/e/f/b.tar.gz", ":::", "g/h.y"}},
	{name: "path forms of ::::", args: []string{"echo", "{/}", "{//}", "{.}", "{/.}", "::::", "paths"}},
	{name: "--colsep on stdin", flags: []string{"--colsep", ","}, args: []string{"echo", "{2}-{1}-{-1}-{3}"}, stdin: "a,b\nc,d\n"},
	{name: "--colsep regex over sources", flags: []string{"--colsep", "[,;]+"}, args: []string{"echo", "{1}-{2}-{3}-{4}", "::::", "cols.csv", ":::", "x;;y"}},
	{name: "--colsep {} as words", flags: []string{"--colsep", ","}, args: []string{"printf", "[%s]", "{}"}, stdin: "a,b\n"},
	{name: "--header at tabs", flags: []string{"--header", ":"}, args: []string{"echo", "{a}-{b}-{1}"}, stdin: "a\tb\n1\t2\n3\t4\n"},
	{name: "--header with --colsep", flags: []string{"--header", ":", "--colsep", ","}, args: []string{"echo", "{name}", "is", "{age}", "{}", "::::", "people.csv"}},
	{name: "--header of ::: sources", flags: []string{"--header", ":"}, args: []string{"echo", "{a}-{b}", "{a/}", "{b.}", ":::", "a", "1", "2", ":::", "b", "x/y.z", "w"}},
	{name: "--header unknown name stays", flags: []string{"--header", ":"}, args: []string{"echo", "{a}", "{zz}", ":::", "a", "1"}},
	{name: "-N", flags: []string{"-N2"}, args: []string{"printf", "[%s]", "x{}y", "{1}", "{2}", ":::", "a", "b", "c", "d", "e"}},
	{name: "-N on stdin", flags: []string{"-N", "3"}, args: []string{"echo", "{1}+{3}", "{-1}"}, stdin: "1\n2\n3\n4\n5\n6\n7\n"},
	{name: "-N over a product", flags: []string{"-N2"}, args: []string{"echo", "{1}", "{2}", "{3}", "{4}", ":::", "a", "b", "c", ":::", "1", "2"}},
	{name: "-n", flags: []string{"-n2"}, args: []string{"printf", "[%s]", "x{}y", "{1}", ":::", "a", "b", "c", "d", "e"}},
	{name: "-n appended", flags: []string{"-n", "3"}, args: []string{"printf", "[%s].", ":::", "a", "b", "c", "d", "e"}},
	{name: "-X spread over slots", flags: []string{"-X", "-j", "3"}, args: []string{"echo", "pre{}post", "{}", "{1}", ":::", "a", "b", "c", "d", "e", "f", "g"}},
	{name: "-X one slot", flags: []string{"-X", "-j", "1"}, args: []string{"printf", "[%s]", "x{1}y", "x{}y", "{#}", ":::", "a", "b", "c"}},
	{name: "-X on stdin", flags: []string{"-X", "-j", "2"}, args: []string{"echo"}, stdin: "1\n2\n3\n4\n5\n"},
	{name: "-0 and ::::", flags: []string{"-0"}, args: []string{"printf", "[%s]", "::::", "nul"}},
	{name: "--tag of several", tag: true, args: []string{"echo", ":::", "a", "b", ":::", "1", "2"}},
	{name: "--tag with -N", tag: true, flags: []string{"-N2"}, args: []string{"echo", ":::", "a", "b", "c"}},
	{name: "--tag with --colsep", tag: true, flags: []string{"--colsep", ","}, args: []string{"echo", "{2}", "::::", "cols.csv"}},
}

// TestArgsLikeParallel runs each of argsCases through GNU parallel -k and
// workerpool --raw -k (or --tag -k) and compares their output.
func TestArgsLikeParallel(t *testing.T) {
	parallel, err := exec.LookPath("parallel")
	if err != nil {
		t.Skip("GNU parallel is not installed")
	}
	dir := t.TempDir()
	for name, content := range argsFiles {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	for _, tt := range argsCases {
		t.Run(tt.name, func(t *testing.T) {
			mode := "--raw"
			if tt.tag {
				mode = "--tag"
			}
			pargs := append([]string{"--will-cite", "-k"}, tt.flags...)
			if tt.tag {
				pargs = append(pargs, "--tag")
			}
			pargs = append(pargs, tt.args...)
			wargs := append(append([]string{mode, "-k"}, tt.flags...), "--")
			wargs = append(wargs, tt.args...)

			pcode, pout, perr := runIn(t, dir, tt.stdin, parallel, pargs...)
			require.Equal(t, 0, pcode, "parallel: %s", perr)
			wcode, wout, werr := runIn(t, dir, tt.stdin, program, wargs...)
			require.Equal(t, 0, wcode, "workerpool: %s", werr)
			require.NotEmpty(t, pout)
			require.Equal(t, pout, wout, "parallel %q\nworkerpool %q", pargs, wargs)
		})
	}
}

// TestArgsUsageErrors: an input source the pool cannot use stops the run
// before any task, with exit status 2 and one line on stderr.
func TestArgsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"--", "echo", ":::"}, "workerpool: ::: needs at least one value after it\n"},
		{[]string{"--", "echo", "{1}", ":::", "a", ":::"}, "workerpool: ::: needs at least one value after it\n"},
		{[]string{"--", "echo", "::::"}, "workerpool: :::: needs a file after it (- is stdin)\n"},
		{[]string{"--", "echo", "::::", "missing.txt"}, "workerpool: cannot read :::: missing.txt: no such file or directory\n"},
		{[]string{"--", "echo", ":::", "a", "::::", "."}, "workerpool: cannot read :::: .: it is a directory\n"},
		{[]string{"--", ":::", "a"}, "workerpool: no command before \":::\": give it first, as in -- echo {} ::: a b\n"},
		{[]string{"--", "echo", ":::+", "a"}, "workerpool: :::+ links its values to the input source before it, and there is none\n"},
		{[]string{"--", "echo", "::::", "-", "::::", "-"}, "workerpool: :::: - names stdin a second time: it can be read once\n"},
		{[]string{"--colsep", "(", "--", "echo", ":::", "a"}, "workerpool: --colsep \"(\" is not a regular expression: error parsing regexp: missing closing ): `(`\n"},
		{[]string{"--header", "1", "--", "echo", ":::", "a"}, "workerpool: --header takes : (the first item names the columns), not \"1\"\n"},
		{[]string{"-N", "0", "--", "echo", ":::", "a"}, "workerpool: -n and -N take a number of items, 1 or more, and cannot go together\n"},
		{[]string{"-n", "2", "-N", "2", "--", "echo", ":::", "a"}, "workerpool: -n and -N take a number of items, 1 or more, and cannot go together\n"},
		{[]string{"--pipe", "--", "cat", ":::", "a"}, "workerpool: --pipe cuts stdin into chunks: it takes no input sources (::: and ::::); name a file with -a\n"},
		{[]string{"--pipe", "-N", "2", "--", "cat"}, "workerpool: --colsep, --header, --link, -n, -N and -X make arguments of items, and --pipe gives no item as an argument: give one or the other\n"},
		{[]string{"-a", "-", "--", "echo", "::::", "-"}, "workerpool: the input file - and :::: - both name stdin, which can be read once\n"},
		{[]string{"-X"}, "workerpool: --colsep, --header, --link, -n, -N and -X say how items become a command's arguments: give the command after --\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runIn(t, dir, "x\n", program, tt.args...)
			require.Equal(t, 2, code, "stderr: %s", stderr)
			require.Empty(t, stdout)
			require.Equal(t, tt.msg, stderr)
		})
	}
}

// TestArgsDryRun: --dry-run shows the tasks that the input sources make,
// each with its arguments and its identifier.
func TestArgsDryRun(t *testing.T) {
	code, stdout, stderr := runWith(t, "", program, "--dry-run", "--", "true", "{1}", "{2/}", ":::", "a", "b", ":::+", "x/1", "y/2")
	require.Equal(t, 0, code, stderr)
	type plan struct {
		Seq        int      `json:"seq"`
		Identifier string   `json:"identifier"`
		Command    string   `json:"command"`
		Args       []string `json:"args"`
	}
	got := ndjson[plan](t, stdout)
	require.Equal(t, []plan{
		{1, "a x/1", "true", []string{"a", "1"}},
		{2, "b y/2", "true", []string{"b", "2"}},
	}, got)
}

// TestArgsFitManyItems: -X with 50,000 items puts them in tasks whose
// command lines each fit in 128 KiB, every item once and in order, and
// every task runs.
func TestArgsFitManyItems(t *testing.T) {
	const items = 50_000
	var in strings.Builder
	for i := range items {
		in.WriteString("item" + strconv.Itoa(i) + "\n")
	}
	code, stdout, stderr := runWith(t, in.String(), program, "-X", "-k", "--ndjson", "-j", "2", "--", "echo")
	require.Equal(t, 0, code, stderr)
	var words []string
	tasks := 0
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var r struct {
			ExitCode   int    `json:"exit_code"`
			ResultBody string `json:"result_body"`
		}
		require.NoError(t, dec.Decode(&r))
		require.Equal(t, 0, r.ExitCode)
		size := len("echo") + 1 + len(r.ResultBody) // the words, each with its NUL, as echo joins them
		require.LessOrEqual(t, size, 128<<10, "task %d", tasks+1)
		words = append(words, strings.Fields(r.ResultBody)...)
		tasks++
	}
	require.Len(t, words, items)
	for i, w := range words {
		require.Equal(t, "item"+strconv.Itoa(i), w)
	}
	// The input takes about 590 KB: a handful of tasks, not one per item.
	require.GreaterOrEqual(t, tasks, 5)
	require.Less(t, tasks, 10)
}

// TestArgsInterruptedWhileReadingSource: SIGINT stops a run that waits for
// the next line of an input source (:::: -) that never ends: it exits
// with 130, having written the result of the task it ran.
func TestArgsInterruptedWhileReadingSource(t *testing.T) {
	cmd := exec.Command(program, "--ndjson", "--", "echo", "{1}{2}", "::::", "-", ":::", "1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	_, err = stdin.Write([]byte("x\n"))
	require.NoError(t, err)
	// The result of the first line says the pool is running, and waits
	// for the next line.
	var r struct {
		Identifier string `json:"identifier"`
		ResultBody string `json:"result_body"`
	}
	require.NoError(t, json.NewDecoder(stdout).Decode(&r))
	require.Equal(t, "x 1", r.Identifier)
	require.Equal(t, "x1\n", r.ResultBody)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() {
		_, _ = io.Copy(io.Discard, stdout) // before Wait, which closes it
		done <- cmd.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pool did not end after SIGINT while stdin stayed open")
	}
	require.Equal(t, 130, cmd.ProcessState.ExitCode())
}
