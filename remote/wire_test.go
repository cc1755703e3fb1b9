package remote

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/job"
)

// wireFields holds, for each protocol version, the JSON fields of every
// line of the conversation. An agent ignores a field it does not know: a
// field added without a new version would be dropped by the agents of the
// last one, silently (as limits once were).
var wireFields = map[int]string{
	2: "hello{workerpool_agent protocol os arch cpus} " +
		"request{id cancel command args env dir stdin has_stdin timeout limits heartbeat} " +
		"limits{memory cpu files fsize} " +
		"reply{id exit_code started duration error cancelled signal timed_out truncated usage limit stdout stderr heartbeat} " +
		"usage{user system max_rss_kb} " +
		"wireBytes{base64}",
	3: "hello{workerpool_agent protocol os arch cpus} " +
		"request{id cancel command args env dir stdin has_stdin timeout limits heartbeat} " +
		"limits{memory cpu files fsize} " +
		"reply{id exit_code started duration error cancelled signal timed_out truncated usage limit stdout stderr heartbeat} " +
		"usage{user system max_rss_kb} " +
		"wireBytes{base64}",
	4: "hello{workerpool_agent protocol os arch cpus} " +
		"request{id cancel command args env dir stdin has_stdin timeout limits heartbeat put mode size data staged return cleanup} " +
		"limits{memory cpu files fsize} " +
		"reply{id exit_code started duration error cancelled signal timed_out truncated usage limit stdout stderr heartbeat file mode size data} " +
		"usage{user system max_rss_kb} " +
		"wireBytes{base64}",
	5: "hello{workerpool_agent protocol os arch cpus memory} " +
		"request{id cancel command args env dir stdin has_stdin timeout limits heartbeat put mode size data staged return cleanup} " +
		"limits{memory cpu files fsize} " +
		"reply{id exit_code started duration error cancelled signal timed_out truncated usage limit stdout stderr heartbeat file mode size data} " +
		"usage{user system max_rss_kb} " +
		"wireBytes{base64}",
}

// fieldsOf lists the JSON names of the fields of the struct types given.
func fieldsOf(vs ...any) string {
	var out []string
	for _, v := range vs {
		t := reflect.TypeOf(v)
		var names []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
		out = append(out, t.Name()+"{"+strings.Join(names, " ")+"}")
	}
	return strings.Join(out, " ")
}

// TestWireFieldsNeedANewProtocol fails when a line of the conversation
// gains, loses or renames a field while Protocol stays the same.
func TestWireFieldsNeedANewProtocol(t *testing.T) {
	got := fieldsOf(hello{}, request{}, limits{}, reply{}, usage{}, wireBytes{})
	require.Equal(t, wireFields[Protocol], got,
		"the wire format changed: bump Protocol, and record its fields here under the new version")
}

// TestWireStringsKeepTheirBytes: arguments, environment and directory
// travel as bytes, valid UTF-8 or not.
func TestWireStringsKeepTheirBytes(t *testing.T) {
	q := request{ID: 1, Command: "caf\xe9", Args: []string{"caf\xe9.txt", "plain", ""}, Env: map[string]string{"K\xff": "v\xe9", "A": "b=c"},
		Dir: "/tmp/\xe9"}
	b, err := json.Marshal(q)
	require.NoError(t, err)
	require.True(t, json.Valid(b))
	require.NotContains(t, string(b), "\ufffd")
	var back request
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, q.Command, back.Command)
	require.Equal(t, q.Args, back.Args)
	require.Equal(t, q.Env, back.Env)
	require.Equal(t, q.Dir, back.Dir)
}

// TestReplyFiguresClamped: figures out of range are held within bounds,
// and a reply that cannot be framed is an error.
func TestReplyFiguresClamped(t *testing.T) {
	var p reply
	require.NoError(t, json.Unmarshal([]byte(`{"id":1,"exit_code":0,"duration":-3,"usage":{"user":1e30,"system":-5,"max_rss_kb":12.7},"stdout":0,"stderr":0}`), &p))
	require.NoError(t, p.check())
	require.EqualValues(t, 0, p.Duration)
	require.EqualValues(t, int64(1<<63-1), p.Usage.User)
	require.EqualValues(t, 0, p.Usage.System)
	require.EqualValues(t, 12, p.Usage.MaxRSS)
	require.NoError(t, json.Unmarshal([]byte(`{"id":1,"exit_code":0,"stdout":-1,"stderr":0}`), &p))
	require.Error(t, p.check())
}

// TestReadHello: the hello is found after what a login prints, with or
// without a line end, and noise that never becomes one fails at once,
// quoted.
func TestReadHello(t *testing.T) {
	const h = `{"workerpool_agent":"v","protocol":3,"cpus":3}` + "\n"
	for _, before := range []string{"", "Welcome\n\n", "Welcome ", "\x00\x01 binary\r", strings.Repeat("line\n", maxGreeting-1)} {
		var got hello
		require.NoError(t, readHello(bufio.NewReader(strings.NewReader(before+h)), &got), "%q", before)
		require.Equal(t, 3, got.CPUs)
	}
	for _, noise := range []string{strings.Repeat("line\n", maxGreeting) + h, strings.Repeat("~", maxGreetingBytes) + h} {
		var got hello
		err := readHello(bufio.NewReader(strings.NewReader(noise)), &got)
		require.ErrorContains(t, err, "no hello in the first")
		require.ErrorContains(t, err, fmt.Sprintf("%q", noise[:20])[1:20])
	}
	var got hello
	require.ErrorIs(t, readHello(bufio.NewReader(strings.NewReader("Welcome ")), &got), io.ErrUnexpectedEOF)
}

// TestOutputNotKeptAsLocally: output the pool cannot keep (here: its spill
// file cannot be made) fails a remote task with the same fields and
// message as a task run here.
func TestOutputNotKeptAsLocally(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	big := strings.Repeat("x", 2*dispatch.DefaultSpillAfter)

	local, err := dispatch.NewLocal(dispatch.LocalOptions{ProcessOptions: dispatch.ProcessOptions{TempDir: missing}})
	require.NoError(t, err)
	defer local.Close()
	here := local.Execute(context.Background(), &job.Task{Command: "sh", Args: []string{"-c", fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", len(big))}})
	defer here.Close()

	rep := reply{ID: 1, ExitCode: 0, Started: true, Stdout: int64(len(big))}
	line, err := json.Marshal(rep)
	require.NoError(t, err)
	c := &conn{stdout: bufio.NewReader(strings.NewReader(string(line) + "\n" + big + "\n")), tempDir: missing}
	var got reply
	require.NoError(t, readLine(c.stdout, &got))
	d, err := c.receive(&got)
	require.NoError(t, err)
	there := d.res
	defer there.Close()

	require.True(t, here.Truncated, "%+v", here)
	require.True(t, there.Truncated, "%+v", there)
	// The same words, but for the random name of the file not made.
	random := regexp.MustCompile(`workerpool-output-[0-9]+`)
	require.Equal(t, random.ReplaceAllString(here.Err.Error(), "*"), random.ReplaceAllString(there.Err.Error(), "*"))
	require.Contains(t, there.Err.Error(), "cannot keep stdout")
	require.Equal(t, here.Stdout.Len(), there.Stdout.Len())
}

// TestAgentCancelledIsHostLost: a task the agent says was cancelled,
// though the pool never asked, was stopped because the agent lost its
// pool: the task runs again elsewhere. Asked, it is cancelled; past its
// limit on the pool's clock, timed out.
func TestAgentCancelledIsHostLost(t *testing.T) {
	c := &conn{host: "h1"}
	task := &job.Task{Seq: 4, Identifier: "four"}
	q := &request{Timeout: int64(time.Second)}
	for _, tc := range []struct {
		late, asked bool
		want        error
		exit        int
	}{
		{false, false, job.ErrHostLost, 143},
		{false, true, job.ErrCancelled, 143},
		{true, true, nil, job.ExitTimedOut},
	} {
		r := job.Result{ExitCode: 143, Err: job.ErrCancelled}
		got := c.answer(task, q, &r, tc.late, tc.asked)
		require.Equal(t, "four", got.Identifier)
		require.Equal(t, tc.exit, got.ExitCode, "%+v", tc)
		if tc.want != nil {
			require.ErrorIs(t, got.Err, tc.want, "%+v", tc)
		} else {
			require.True(t, got.TimedOut)
			require.EqualError(t, got.Err, "timed out after 1s")
		}
	}
}

// TestReplyEndsInLineBreak: a reply's outputs are followed by a line
// break; anything else there is a protocol error, and a stream that ends
// before it is cut short.
func TestReplyEndsInLineBreak(t *testing.T) {
	line := `{"id":1,"exit_code":0,"started":true,"stdout":2,"stderr":1}` + "\n"
	for _, tt := range []struct {
		after string
		err   string
	}{
		{after: "okE\n"},
		{after: "okEx", err: `a reply's outputs end in 'x', not a line break`},
		{after: "okE", err: io.ErrUnexpectedEOF.Error()},
	} {
		c := &conn{stdout: bufio.NewReader(strings.NewReader(line + tt.after)), tempDir: t.TempDir()}
		var rep reply
		require.NoError(t, readLine(c.stdout, &rep))
		d, err := c.receive(&rep)
		if tt.err != "" {
			require.EqualError(t, err, tt.err, "%q", tt.after)
			continue
		}
		require.NoError(t, err, "%q", tt.after)
		require.Equal(t, "ok", string(d.res.Stdout.Head()))
		d.res.Close()
	}
}
