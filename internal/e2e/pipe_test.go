//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pipeInputs writes the inputs the --pipe tests cut, and returns their
// paths by name: "seq", the numbers 1 to 100000 a line each, "fasta",
// records that start with ">" and end with "TT\n", and "short", the first
// 50 of those records.
func pipeInputs(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	var seq, fasta strings.Builder
	for i := 1; i <= 100000; i++ {
		fmt.Fprintf(&seq, "%d\n", i)
	}
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&fasta, ">rec%d\nACGT%s\nTT\n", i, strings.Repeat("G", i%50))
	}
	paths := map[string]string{"seq": filepath.Join(dir, "seq"), "fasta": filepath.Join(dir, "fasta"), "short": filepath.Join(dir, "short")}
	require.NoError(t, os.WriteFile(paths["seq"], []byte(seq.String()), 0o644))
	require.NoError(t, os.WriteFile(paths["fasta"], []byte(fasta.String()), 0o644))
	short := fasta.String()
	short = short[:strings.Index(short, ">rec51\n")]
	require.NoError(t, os.WriteFile(paths["short"], []byte(short), 0o644))
	return paths
}

// TestPipeSameAsParallel runs the same --pipe and --pipepart commands
// through GNU parallel and the pool: the chunks are the same, so the
// outputs are. parallel is given -q, so that it runs the command's words
// as they are, without a shell, as the pool does.
func TestPipeSameAsParallel(t *testing.T) {
	parallel, err := exec.LookPath("parallel")
	if err != nil {
		t.Skip("GNU parallel is not installed")
	}
	inputs := pipeInputs(t)
	for _, tc := range []struct {
		name  string
		input string   // the file given on stdin, or by -a in args
		args  []string // the flags, for both; then -- and the command for the pool
		cmd   []string
	}{
		{"lines", "seq", []string{"--pipe", "--block", "100K"}, []string{"wc", "-l"}},
		{"the default block", "seq", []string{"--pipe"}, []string{"md5sum"}},
		{"-L", "seq", []string{"--pipe", "--block", "10K", "-L", "7"}, []string{"md5sum"}},
		{"--recstart", "fasta", []string{"--pipe", "--block", "1K", "--recstart", ">"}, []string{"md5sum"}},
		{"--recend", "fasta", []string{"--pipe", "--block", "1K", "--recend", "TT\n"}, []string{"md5sum"}},
		{"--recstart and --recend", "fasta", []string{"--pipe", "--block", "2K", "--recend", "\n", "--recstart", ">"}, []string{"md5sum"}},
		{"a block smaller than a record", "short", []string{"--pipe", "--block", "5", "--recstart", ">"}, []string{"md5sum"}},
		{"{#} and {%}", "seq", []string{"--pipe", "--block", "200K", "-j", "1"}, []string{"sh", "-c", "echo {#} {%} x{}x; wc -c"}},
		{"--pipepart", "seq", []string{"--pipepart", "--block", "100K", "-a", "FILE"}, []string{"wc", "-l"}},
		{"--pipepart --recstart", "fasta", []string{"--pipepart", "--block", "1K", "--recstart", ">", "-a", "FILE"}, []string{"md5sum"}},
		{"--pipepart, a block smaller than a record", "short", []string{"--pipepart", "--block", "3", "--recend", "TT\n", "-a", "FILE"}, []string{"md5sum"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := inputs[tc.input]
			args := make([]string, len(tc.args))
			stdin := path
			for i, a := range tc.args {
				args[i] = a
				if a == "FILE" {
					args[i], stdin = path, os.DevNull
				}
			}
			theirs := runFile(t, stdin, parallel, append(append([]string{"-q", "-k"}, args...), tc.cmd...)...)
			ours := runFile(t, stdin, program, append(append(append([]string{"--raw", "-k"}, args...), "--"), tc.cmd...)...)
			require.NotEmpty(t, theirs)
			require.Equal(t, theirs, ours)
		})
	}
}

// runFile runs name with args and the file at path on stdin, and returns
// its stdout; it must exit 0.
func runFile(t *testing.T, path, name string, args ...string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdin = f
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %q: %s", name, args, stderr.String())
	return stdout.String()
}

// TestPipeResults checks the JSON results of --pipe: one for each chunk,
// numbered as the chunks, whatever each task does.
func TestPipeResults(t *testing.T) {
	code, stdout, stderr := runWith(t, "a\nb\nc\nd\ne\n", program, "--ndjson", "-k", "--pipe", "--block", "4", "--", "sh", "-c", "wc -l; exit $(({#} % 2))")
	require.Equal(t, 1, code, "a task failed: %s", stderr)
	type result struct {
		Identifier string `json:"identifier"`
		ExitCode   int    `json:"exit_code"`
		ResultBody string `json:"result_body"`
		Seq        int    `json:"seq"`
	}
	results := ndjson[result](t, stdout)
	for i := range results {
		results[i].ResultBody = strings.TrimSpace(results[i].ResultBody)
	}
	require.Equal(t, []result{
		{Identifier: "1", ExitCode: 1, ResultBody: "2", Seq: 1},
		{Identifier: "2", ExitCode: 0, ResultBody: "2", Seq: 2},
		{Identifier: "3", ExitCode: 1, ResultBody: "1", Seq: 3},
	}, results)
}

// TestPipeDryRun plans the chunks, with where each lies in the input, and
// runs nothing.
func TestPipeDryRun(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	input := filepath.Join(dir, "input")
	require.NoError(t, os.WriteFile(input, []byte("1\n2\n3\n4\n5\n"), 0o644))
	code, stdout, stderr := runWith(t, "1\n2\n3\n", program, "--dry-run", "--pipe", "--block", "4", "--", "touch", marker)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, `{"seq":1,"identifier":"1","command":"touch","path":"/usr/bin/touch","args":["`+marker+`"],"chunk":{"offset":0,"length":4},"cpus":1,"fits":"this machine: 1 of 2 slots"}`+"\n"+
		`{"seq":2,"identifier":"2","command":"touch","path":"/usr/bin/touch","args":["`+marker+`"],"chunk":{"offset":4,"length":2},"cpus":1,"fits":"this machine: 1 of 2 slots"}`+"\n",
		strings.ReplaceAll(stdout, `"path":"/bin/touch"`, `"path":"/usr/bin/touch"`))
	code, stdout, stderr = runWith(t, "", program, "--dry-run", "--pipepart", "-a", input, "--block", "3", "--", "touch", marker)
	require.Equal(t, 0, code, stderr)
	// The first line end at or past 3 is the one at 3.
	require.Contains(t, stdout, `"chunk":{"file":"`+input+`","offset":0,"length":4},`)
	require.Contains(t, stdout, `"chunk":{"file":"`+input+`","offset":8,"length":2},`)
	require.Equal(t, 3, strings.Count(stdout, "\n"))
	require.NoFileExists(t, marker)
}

// TestPipeUsage checks the command lines --pipe refuses: a message and
// exit status 2.
func TestPipeUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pipe"}, "--pipe cuts the input into chunks for a command: give one after --"},
		{[]string{"-L", "2", "--", "cat"}, "give --pipe too"},
		{[]string{"--recend", ";", "--", "cat"}, "give --pipe too"},
		{[]string{"--pipepart", "--", "cat"}, "--pipepart cuts a file it can seek in: name it with -a FILE"},
		{[]string{"--pipepart", "-a", "/no/such/file", "--", "cat"}, "cannot read -a /no/such/file: no such file or directory"},
		{[]string{"--pipe", "--block", "0", "--", "cat"}, "--block must be more than 0"},
		{[]string{"--pipe", "--block", "1X", "--", "cat"}, "is not a size"},
		{[]string{"-a", "/dev/null"}, "--arg-file (-a) reads input for a command: give one after --"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runWith(t, "x\n", program, tc.args...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			require.Contains(t, stderr, tc.want)
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %s", stderr)
		})
	}
}

// TestPipeMemory sends 200 MiB through --pipe -j 8 -k, cat as the command:
// every byte comes out, and the pool's peak memory stays far below the
// input's size, since it holds about -j chunks of 1 MiB at a time.
func TestPipeMemory(t *testing.T) {
	const size = 200 << 20
	cmd := exec.Command(program, "--raw", "-k", "-j", "8", "--pipe", "--", "cat")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	fed := make(chan error, 1)
	go func() {
		// Lines of 64 bytes fill each block of 1 MiB exactly, so each
		// chunk is cut as soon as it is read, and the last one comes out
		// before the input ends.
		_, err := io.Copy(stdin, io.LimitReader(&lines{line: []byte(strings.Repeat("x", 63) + "\n")}, size))
		fed <- err
	}()
	got, err := io.CopyN(io.Discard, stdout, size)
	require.NoError(t, err, "%d bytes out; stderr: %s", got, stderr)
	require.NoError(t, <-fed)
	// The pool waits for more input: its peak memory so far is that of
	// the whole run (see TestTemplateLongLine).
	peak := peakKB(t, cmd.Process.Pid)
	t.Logf("peak memory of the pool, cutting %d MiB: %d MiB", size>>20, peak>>10)
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait(), "stderr: %s", stderr)
	rest, _ := io.ReadAll(stdout)
	require.Empty(t, rest)
	require.Less(t, peak, int64(100<<10), "peak memory of the pool, in KiB, cutting %d MiB", size>>20)
}

// lines reads as line over and over, without end.
type lines struct {
	line []byte
	at   int
}

func (r *lines) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.at:])
		n += c
		r.at = (r.at + c) % len(r.line)
	}
	return n, nil
}

// TestArgFileSameAsParallel reads the input lines of a command from the
// file -a names, as GNU parallel does, rather than from stdin.
func TestArgFileSameAsParallel(t *testing.T) {
	parallel, err := exec.LookPath("parallel")
	if err != nil {
		t.Skip("GNU parallel is not installed")
	}
	path := filepath.Join(t.TempDir(), "args")
	require.NoError(t, os.WriteFile(path, []byte("a b\nc\nd.txt\n"), 0o644))
	theirs := runFile(t, os.DevNull, parallel, "-q", "-k", "-a", path, "echo", "{#}", "{}", "{.}")
	ours := runFile(t, os.DevNull, program, "--raw", "-k", "-a", path, "--", "echo", "{#}", "{}", "{.}")
	require.Equal(t, "1 a b a b\n2 c c\n3 d.txt d\n", ours)
	require.Equal(t, theirs, ours)
}
