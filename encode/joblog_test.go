package encode

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

func TestShellQuote(t *testing.T) {
	require.Equal(t, `echo a 'b c' 'it'"'"'s' '' x/y.z=1,2@3:4`, ShellQuote([]string{"echo", "a", "b c", "it's", "", "x/y.z=1,2@3:4"}))
	require.Equal(t, `sh -c 'kill -9 $$'`, ShellQuote([]string{"sh", "-c", "kill -9 $$"}))
}

// TestJoblogLines: a line per task, as GNU parallel writes them, that
// ReadJoblog reads back.
func TestJoblogLines(t *testing.T) {
	start := time.Unix(1700000000, 123_456_789)
	ok := &job.Result{Seq: 1, ExitCode: 0, Started: true, StartedAt: start, Duration: 1500 * time.Millisecond, Stdout: job.BytesOutput([]byte("hi\n"))}
	killed := &job.Result{Seq: 2, ExitCode: 137, Signal: "SIGKILL", Host: "node1", Started: true, StartedAt: start}
	notFound := &job.Result{Seq: 3, ExitCode: 127, StartedAt: start}
	task := &job.Task{Command: "echo", Args: []string{"a b", "tab\there"}, Stdin: "12345", HasStdin: true}

	var b []byte
	b = append(b, JoblogHeader...)
	b = AppendJoblog(b, task, ok)
	b = AppendJoblog(b, &job.Task{Command: "sleep", Args: []string{"9"}}, killed)
	b = AppendJoblog(b, &job.Task{Command: "nope"}, notFound)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Equal(t, []string{
		"Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand",
		"1\t:\t1700000000.123\t     1.500\t5\t3\t0\t0\techo 'a b' 'tab\\there'",
		"2\tnode1\t1700000000.123\t     0.000\t0\t0\t0\t9\tsleep 9",
		"3\t:\t1700000000.123\t     0.000\t0\t0\t127\t0\tnope",
	}, lines)

	// A torn last line is no entry; the header is none either.
	entries, endsLine, err := ReadJoblog(strings.NewReader(string(b) + "4\t:\t17"))
	require.NoError(t, err)
	require.False(t, endsLine)
	require.Equal(t, []JoblogEntry{{Seq: 1, Succeeded: true}, {Seq: 2}, {Seq: 3}}, entries)
	_, endsLine, err = ReadJoblog(strings.NewReader(""))
	require.NoError(t, err)
	require.True(t, endsLine)
}
