package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestResumeCompactsJournal: --resume first rewrites the journal with one
// line per identifier, its latest result, in the order of their last
// appearance, without the torn line a crash left and the lines that are
// not results; then appends the run's own results. A compact journal is
// left as it is, the same file untouched.
func TestResumeCompactsJournal(t *testing.T) {
	dir := t.TempDir()
	journal := filepath.Join(dir, "results.ndjson")
	require.NoError(t, os.WriteFile(journal, []byte(`{"identifier":"a","exit_code":1,"result_body":"1"}
{"identifier":"b","exit_code":0,"result_body":"b"}
not a result
{"event":"started","identifier":"a","seq":1,"attempt":1}
{"identifier":"a","exit_code":1,"result_body":"2"}
{"identifier":"a","exit_code":0,"result_body":"3"}
{"identifier":"c","exit_co`), 0o644))
	tasks := `{"identifier":"a","command":"echo","args":["4"]}` + "\n" + `{"identifier":"b","command":"echo","args":["b2"]}` + "\n"
	compacted := `{"identifier":"b","exit_code":0,"result_body":"b"}
{"identifier":"a","exit_code":0,"result_body":"3"}
`

	code, stdout, stderr := runWith(t, tasks, program, "--ndjson", "-o", journal, "--resume")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stdout)
	data, err := os.ReadFile(journal)
	require.NoError(t, err)
	require.Equal(t, compacted, string(data), "the latest result of each identifier, nothing else")

	// The run's own results go after the compacted lines.
	code, _, stderr = runWith(t, tasks+`{"identifier":"c","command":"echo","args":["c"]}`+"\n", program, "--ndjson", "-o", journal, "--resume")
	require.Equal(t, 0, code, stderr)
	data, err = os.ReadFile(journal)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(data), compacted), "%s", data)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.Len(t, lines, 3)
	require.Contains(t, lines[2], `"identifier":"c","exit_code":0,"result_body":"c\n"`)

	// Compact already: not rewritten, not even touched.
	before, err := os.Stat(journal)
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	code, _, stderr = runWith(t, tasks, program, "--ndjson", "-o", journal, "--resume")
	require.Equal(t, 0, code, stderr)
	after, err := os.Stat(journal)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "the same file")
	require.Equal(t, before.ModTime(), after.ModTime(), "untouched")
	again, err := os.ReadFile(journal)
	require.NoError(t, err)
	require.Equal(t, string(data), string(again))
}

// TestResumeCompactedJournalLocked: the journal a resumed run compacted is
// locked for the run as the old one was: a second pool on it, resuming or
// not, fails at once (exit 2) and runs nothing.
func TestResumeCompactedJournalLocked(t *testing.T) {
	dir := t.TempDir()
	journal, started := filepath.Join(dir, "results.ndjson"), filepath.Join(dir, "started")
	require.NoError(t, os.WriteFile(journal, []byte(`{"identifier":"a","exit_code":1}
{"identifier":"a","exit_code":1}
`), 0o644))
	first := exec.Command(program, "--ndjson", "-o", journal, "--resume",
		`[{"identifier":"a","command":"sh","args":["-c","touch `+started+`; sleep 2"]}]`)
	require.NoError(t, first.Start())
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the first pool's task never started")
	}
	data, err := os.ReadFile(journal)
	require.NoError(t, err)
	require.Equal(t, `{"identifier":"a","exit_code":1}`+"\n", string(data), "compacted before the task ran")

	for _, args := range [][]string{{"--resume"}, nil} {
		second := filepath.Join(dir, "second-ran")
		code, _, stderr := runWith(t, "", program, append([]string{"--ndjson", "-o", journal,
			`[{"command":"touch","args":["` + second + `"]}]`}, args...)...)
		require.Equal(t, 2, code, "%v: %s", args, stderr)
		require.Contains(t, stderr, "another workerpool is writing to it")
		require.NoFileExists(t, second)
	}
	require.NoError(t, first.Wait())
	data, err = os.ReadFile(journal)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(data), "\n"), "%s", data)
}
