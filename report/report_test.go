package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// task returns a task of host that ran from start to start+d, in ms.
func task(seq int64, host string, start, d float64, exit int) Task {
	at := t0.Add(time.Duration(start * float64(time.Millisecond)))
	return Task{Seq: seq, Identifier: fmt.Sprintf("t%d", seq), Host: host, ExitCode: exit, Attempts: 1,
		DurationMS: d, UserMS: d / 2, SysMS: d / 10, MaxRSSKB: 1000 + seq,
		StartedAt: at, EndedAt: at.Add(time.Duration(d * float64(time.Millisecond)))}
}

func noStderr() string { return "" }

func render(t *testing.T, b *Builder) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, b.Write(&out, Options{Title: "test run", Generated: t0}))
	return out.String()
}

// TestEscaping: what tasks say is text on the page, never markup, in the
// tables and in the bars' titles alike.
func TestEscaping(t *testing.T) {
	var b Builder
	bad := task(1, "h<1>", 0, 10, 1)
	bad.Identifier = `<script>alert("x")</script>`
	bad.Error = `<img src=x onerror=alert(1)>`
	b.Add(bad, func() string { return "</pre><script>evil()</script>" })
	page := render(t, &b)
	require.NotContains(t, page, "<script")
	require.NotContains(t, page, "<img")
	require.Contains(t, page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
	require.Contains(t, page, "&lt;/pre&gt;&lt;script&gt;evil()&lt;/script&gt;")
	require.Contains(t, page, "h&lt;1&gt;")
}

// TestEmptyRun: a run with no result still makes a page, which says so.
func TestEmptyRun(t *testing.T) {
	page := render(t, &Builder{})
	require.Contains(t, page, "<b>0</b>tasks")
	require.Contains(t, page, "No task has times to place on a timeline.")
	require.Contains(t, page, "No task failed.")
	require.NotContains(t, page, "<rect")
}

// TestOneTask: one task is one bar, on one lane of its host, and the
// slowest.
func TestOneTask(t *testing.T) {
	var b Builder
	b.Add(task(1, "", 0, 250, 0), noStderr)
	page := render(t, &b)
	require.Equal(t, 1, strings.Count(page, `class="ok"><title>t1 (#1) on this machine: 250 ms, exit 0`))
	require.Contains(t, page, "<b>250 ms</b>wall time")
	require.Contains(t, page, `<td class="id">t1 <span class="note">#1</span></td>`)
	require.Contains(t, page, "No task failed.")
	// Its CPU (125 + 25 ms) and peak RSS (1001 KiB) against its duration.
	require.Contains(t, page, `class="ok"><title>t1: 250 ms, 150 ms</title></circle>`)
	require.Contains(t, page, `class="ok"><title>t1: 250 ms, 1001 KiB</title></circle>`)
}

// TestLanes: tasks that overlap on a host take lanes of their own, as
// slots; one that starts after another ends takes its lane.
func TestLanes(t *testing.T) {
	var b Builder
	b.Add(task(1, "a", 0, 100, 0), noStderr)
	b.Add(task(2, "a", 50, 100, 0), noStderr)  // overlaps 1: lane 2
	b.Add(task(3, "a", 100, 100, 0), noStderr) // starts as 1 ends: lane 1
	b.Add(task(4, "b", 0, 200, 0), noStderr)
	tl, idle := newTimeline(b.tasks)
	require.Len(t, tl.Hosts, 2)
	require.Equal(t, hostLanes{Name: "a", Y: 0, Lanes: 2, H: 22}, tl.Hosts[0])
	require.Equal(t, 1, tl.Hosts[1].Lanes)
	ys := map[string]float64{}
	for _, bar := range tl.Bars {
		ys[strings.Fields(bar.Title)[0]] = bar.Y
	}
	require.Equal(t, map[string]float64{"t1": 0, "t2": 12, "t3": 0, "t4": 36}, ys)
	// a: 2 lanes over 200 ms, busy 300 ms; b: 1 lane, busy all along.
	require.Equal(t, "100 ms", idle[0].Idle)
	require.InDelta(t, 75, idle[0].BusyPct, 0.01)
	require.InDelta(t, 100, idle[1].BusyPct, 0.01)
}

// TestFailedAndTimedOut: failed tasks are listed with their error and the
// end of their stderr, and coloured by how they ended.
func TestFailedAndTimedOut(t *testing.T) {
	var b Builder
	b.Add(task(1, "", 0, 10, 0), noStderr)
	failed := task(2, "", 0, 20, 3)
	failed.Error = "exit status 3"
	b.Add(failed, func() string { return strings.Repeat("x", 5000) + "last words\n" })
	slow := task(3, "", 0, 1000, 124)
	slow.TimedOut, slow.Signal, slow.Error = true, "SIGTERM", "timed out after 1s"
	b.Add(slow, func() string { return "still working" })
	never := Task{Seq: 4, Identifier: "t4", ExitCode: -1, Error: "command not found"}
	b.Add(never, func() string { return "" })
	page := render(t, &b)
	require.Contains(t, page, "<b>3</b>failed")
	require.Contains(t, page, `class="timeout"><title>t3`)
	require.Contains(t, page, `class="failed"><title>t2`)
	require.Contains(t, page, "last words")
	require.Contains(t, page, "timed out after 1s<pre>still working</pre>")
	require.Contains(t, page, "command not found")
	require.Len(t, b.failed, 3)
	require.LessOrEqual(t, len(b.failed[0].Stderr), stderrTail, "only the end of stderr is kept")
	require.Empty(t, b.tasks[1].Stderr, "stderr is kept only where listed")
}

// TestSlowest: the ten slowest are listed, slowest first, whatever order
// they come in.
func TestSlowest(t *testing.T) {
	var b Builder
	for i := range 50 {
		b.Add(task(int64(i+1), "", 0, float64((i*37)%50+1), 0), noStderr)
	}
	require.Len(t, b.slow, slowest)
	for i, s := range b.slow {
		require.Equal(t, float64(50-i), s.DurationMS)
	}
}

// TestManyTasksStaySmall: 10,000 tasks over several hosts make a page
// under 2 MB, whose timeline says that it merged bars.
func TestManyTasksStaySmall(t *testing.T) {
	var b Builder
	hosts := []string{"", "h1", "h2", "h3"}
	for i := range 10000 {
		slot := i % 32
		b.Add(task(int64(i+1), hosts[slot%4], float64(i/32)*20, 15+float64(i%7), i%97/96), func() string { return "oops" })
	}
	page := render(t, &b)
	require.Less(t, len(page), 2<<20, "the page of 10,000 tasks is under 2 MB")
	require.Contains(t, page, "bars stand each for several neighbouring tasks")
	require.LessOrEqual(t, strings.Count(page, "<rect")-len(b.tasks)*0, maxBars+200)
	require.Contains(t, page, "of 10000 tasks, evenly sampled")
	for _, h := range []string{"this machine", "h1", "h2", "h3"} {
		require.Contains(t, page, ">"+h+"</text>")
	}
}

// TestRead: a results file gives the same page as the results it holds;
// events and blank lines are skipped, and a line that is not JSON is an
// error that names the file and line.
func TestRead(t *testing.T) {
	file := `{"identifier":"a","exit_code":0,"result_body":"","stderr":"","seq":1,"duration_ms":12.5,"started_at":"2026-12-04T12:00:00.000Z","ended_at":"2026-12-04T12:00:00.012Z","host":"h1"}
{"event":"started","seq":2,"identifier":"b"}

{"identifier":"b","exit_code":2,"result_body":"","stderr":"no such file\n","seq":2,"duration_ms":3,"started_at":"2026-12-04T12:00:00.001Z","ended_at":"2026-12-04T12:00:00.004Z","host":"h2","error":"exit status 2"}
`
	var b Builder
	require.NoError(t, b.Read(strings.NewReader(file), "results.ndjson"))
	require.Len(t, b.tasks, 2)
	require.Equal(t, "no such file\n", b.failed[0].Stderr)
	require.Equal(t, t0.Add(time.Millisecond), b.tasks[1].StartedAt)
	page := render(t, &b)
	require.Contains(t, page, "<b>1</b>failed")

	err := b.Read(strings.NewReader("{\"seq\":1}\n{oops\n"), "r.ndjson")
	require.ErrorContains(t, err, "r.ndjson:2: not a result")
}

// memSpill is a job.Spill in memory.
type memSpill struct{ *bytes.Reader }

func (memSpill) Close() error { return nil }

// TestTailOf: the end of an output is its last bytes, whether they are
// all in memory, all in its spill, or astride the two, and starts on a
// character.
func TestTailOf(t *testing.T) {
	spill := func(s string) job.Spill { return memSpill{bytes.NewReader([]byte(s))} }
	require.Equal(t, "6789", tailOf(job.BytesOutput([]byte("0123456789")), 4))
	require.Equal(t, "short", tailOf(job.BytesOutput([]byte("short")), 40))
	require.Equal(t, "wxyz", tailOf(job.NewOutput([]byte("head"), spill("abcdefwxyz")), 4))
	require.Equal(t, "adabc", tailOf(job.NewOutput([]byte("head"), spill("abc")), 5))
	require.Equal(t, "headabc", tailOf(job.NewOutput([]byte("head"), spill("abc")), 50))
	require.Equal(t, "é!", tailOf(job.NewOutput(nil, spill("xé!")), 3))
	require.Equal(t, "!", tailOf(job.NewOutput(nil, spill("xé!")), 2), "not half a character")
}
