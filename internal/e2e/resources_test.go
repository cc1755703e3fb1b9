package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests run the built program with tasks that ask for slots
// ("cpus") and memory ("memory"), and check from the results' times what
// ran at once.

// spanResult is a result or event line, with what the tests of requests
// read of it.
type spanResult struct {
	Seq       int64   `json:"seq"`
	Event     string  `json:"event"`
	Resource  string  `json:"resource"`
	ExitCode  int     `json:"exit_code"`
	Error     string  `json:"error"`
	Body      string  `json:"result_body"`
	Host      string  `json:"host"`
	StartedAt string  `json:"started_at"`
	Duration  float64 `json:"duration_ms"`
}

// span is when a task ran, with how many slots and bytes it took.
type span struct {
	seq        int64
	start, end time.Time
	weight     int64
}

func (r spanResult) span(t *testing.T, weight int64) span {
	t.Helper()
	start, err := time.Parse(time.RFC3339Nano, r.StartedAt)
	require.NoError(t, err, "task %d: started_at %q", r.Seq, r.StartedAt)
	return span{seq: r.Seq, start: start, end: start.Add(time.Duration(r.Duration * float64(time.Millisecond))), weight: weight}
}

// readLines reads NDJSON lines.
func readLines(t *testing.T, out string) []spanResult {
	t.Helper()
	var lines []spanResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r spanResult
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		lines = append(lines, r)
	}
	return lines
}

// peakOf is the most weight held at once by spans. The results' times are
// in milliseconds, so a span ending within slack of another's start is
// taken as over before it.
func peakOf(spans []span) int64 {
	const slack = 3 * time.Millisecond
	peak := int64(0)
	for _, s := range spans {
		held := int64(0)
		for _, o := range spans {
			if !o.start.After(s.start) && o.end.Add(-slack).After(s.start) {
				held += o.weight
			}
		}
		peak = max(peak, held)
	}
	return peak
}

// runTimed runs the program on input and returns its exit code, its
// output lines, stderr and how long it took.
func runTimed(t *testing.T, input string, args ...string) (int, []spanResult, string, time.Duration) {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := runWith(t, input, program, args...)
	return code, readLines(t, stdout), stderr, time.Since(start)
}

// TestRequestCPUs: at -j 4, tasks of "cpus": 2 run two at once, never
// three.
func TestRequestCPUs(t *testing.T) {
	input := strings.Repeat(`{"command":"sleep","args":["1"],"cpus":2}`+"\n", 8)
	code, results, stderr, took := runTimed(t, input, "-j", "4", "--ndjson")
	require.Equal(t, 0, code, stderr)
	require.Len(t, results, 8)
	var spans []span
	for _, r := range results {
		spans = append(spans, r.span(t, 1))
	}
	require.Equal(t, int64(2), peakOf(spans), "two tasks of 2 cpus at once in 4 slots")
	require.GreaterOrEqual(t, took, 3800*time.Millisecond, "four rounds of 1 s")
	require.Less(t, took, 8*time.Second)
}

// TestRequestNoStarvation: a task of "cpus": 4 among tasks of 1 at -j 4
// is passed by at most 4 of the tasks behind it, then starts while small
// tasks still wait, and runs alone.
func TestRequestNoStarvation(t *testing.T) {
	var input strings.Builder
	for i := 1; i <= 21; i++ {
		if i == 5 {
			input.WriteString(`{"command":"sleep","args":["0.2"],"cpus":4}` + "\n")
			continue
		}
		input.WriteString(`{"command":"sleep","args":["0.3"]}` + "\n")
	}
	code, results, stderr, _ := runTimed(t, input.String(), "-j", "4", "--ndjson")
	require.Equal(t, 0, code, stderr)
	require.Len(t, results, 21)
	var big span
	var small []span
	for _, r := range results {
		if r.Seq == 5 {
			big = r.span(t, 4)
		} else {
			small = append(small, r.span(t, 1))
		}
	}
	passed, after := 0, 0
	for _, s := range small {
		switch {
		case s.seq > 5 && s.start.Before(big.start):
			passed++
		case s.start.After(big.start):
			after++
		}
	}
	require.LessOrEqual(t, passed, 4, "tasks behind the large one that started before it")
	require.GreaterOrEqual(t, after, 10, "small tasks still waiting when the large one started")
	require.LessOrEqual(t, peakOf(append(small, big)), int64(4), "never more than 4 slots taken")
}

// TestRequestMemory: with --mem-capacity 1G, tasks of "memory": "400M"
// run two at once, never three.
func TestRequestMemory(t *testing.T) {
	input := strings.Repeat(`{"command":"sleep","args":["1"],"memory":"400M"}`+"\n", 3)
	code, results, stderr, took := runTimed(t, input, "-j", "4", "--mem-capacity", "1G", "--ndjson")
	require.Equal(t, 0, code, stderr)
	require.Len(t, results, 3)
	var spans []span
	for _, r := range results {
		spans = append(spans, r.span(t, 1))
	}
	require.Equal(t, int64(2), peakOf(spans))
	require.GreaterOrEqual(t, took, 1900*time.Millisecond, "the third waits for one of the first two")
}

// TestRequestTooLarge: a task that asks for more than the machine has
// gets its result at once, even behind a task that waits for room: an
// error naming what it asked for and what there is. The other tasks run,
// and the run exits 1.
func TestRequestTooLarge(t *testing.T) {
	input := `{"command":"sleep","args":["2"],"cpus":4}
{"command":"true","cpus":4}
{"command":"true","cpus":99}
{"command":"true","memory":"2G"}
{"command":"echo","args":["ran"]}
`
	code, results, stderr, _ := runTimed(t, input, "-j", "4", "--mem-capacity", "1G", "--ndjson")
	require.Equal(t, 1, code, stderr)
	require.Len(t, results, 5)
	require.Equal(t, []int64{3, 4}, []int64{results[0].Seq, results[1].Seq}, "answered before the first task ends")
	require.Equal(t, -1, results[0].ExitCode)
	require.Equal(t, "no place can ever hold the task: it asks for 99 cpus; the largest place has 4 slots (this machine, -j) and 1.0 GiB of memory (this machine)", results[0].Error)
	require.Equal(t, -1, results[1].ExitCode)
	require.Contains(t, results[1].Error, "it asks for 1 cpu, 2.0 GiB of memory;")
	byseq := map[int64]spanResult{}
	for _, r := range results {
		byseq[r.Seq] = r
	}
	require.Equal(t, "ran\n", byseq[5].Body)
	require.Equal(t, 0, byseq[1].ExitCode)
	require.Equal(t, 0, byseq[2].ExitCode)
}

// TestRequestWaiting: a task that waits more than a second for room has
// a "waiting" event, saying what for, before it starts.
func TestRequestWaiting(t *testing.T) {
	for _, tc := range []struct {
		name, resource, tasks string
		args                  []string
	}{
		{"cpus", "cpus", `{"command":"sleep","args":["1.5"],"cpus":2}
{"command":"true","cpus":2}
`, []string{"-j", "2"}},
		{"memory", "memory", `{"command":"sleep","args":["1.5"],"memory":"80M"}
{"command":"true","memory":"80M"}
`, []string{"-j", "2", "--mem-capacity", "100M"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, lines, stderr, _ := runTimed(t, tc.tasks, append(tc.args, "--ndjson", "--events")...)
			require.Equal(t, 0, code, stderr)
			var seen []string
			for _, l := range lines {
				if l.Seq == 2 {
					seen = append(seen, l.Event+" "+l.Resource)
				}
			}
			require.Equal(t, []string{"waiting " + tc.resource, "started ", "finished "}, seen)
		})
	}
}

// TestRequestDryRun: a dry run shows what each task asks for and where it
// could run, or that it could run nowhere.
func TestRequestDryRun(t *testing.T) {
	code, stdout, stderr := runWith(t, "", program, "--dry-run", "-j", "4", "--mem-capacity", "1G",
		`[{"command":"true","cpus":2,"memory":"256M"},{"command":"true","cpus":5}]`)
	require.Equal(t, 1, code, stderr)
	plans := ndjson[map[string]any](t, stdout)
	require.Len(t, plans, 2)
	require.Equal(t, 2.0, plans[0]["cpus"])
	require.Equal(t, float64(256<<20), plans[0]["memory"])
	require.Equal(t, "this machine: 2 of 4 slots, 256.0 MiB of 1.0 GiB of memory", plans[0]["fits"])
	require.Contains(t, plans[1]["error"], "it asks for 5 cpus; the largest place has 4 slots")
}

// TestRequestTemplate: in template mode --cpus and --memory are every
// task's request, and bad values are usage errors.
func TestRequestTemplate(t *testing.T) {
	code, results, stderr, took := runTimed(t, strings.Repeat("0.5\n", 4), "-j", "4", "--cpus", "2", "--ndjson", "--", "sleep")
	require.Equal(t, 0, code, stderr)
	var spans []span
	for _, r := range results {
		spans = append(spans, r.span(t, 1))
	}
	require.Equal(t, int64(2), peakOf(spans))
	require.GreaterOrEqual(t, took, 900*time.Millisecond)

	for _, args := range [][]string{
		{"-j", "4", "--cpus", "5"},
		{"--cpus", "-1"},
		{"--memory", "1k"},
		{"--memory", "2G", "--mem-capacity", "1G"},
		{"--mem-capacity", "lots"},
	} {
		code, _, stderr := runWith(t, "", program, append(args, "[]")...)
		require.Equal(t, 2, code, "%v: %s", args, stderr)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%v: %s", args, stderr)
	}
}

// TestRequestBadField: "cpus" and "memory" that are not what they must be
// make the task invalid, with an error naming the field.
func TestRequestBadField(t *testing.T) {
	code, results, stderr, _ := runTimed(t, `{"command":"true","cpus":0}
{"command":"true","cpus":1.5}
{"command":"true","memory":"lots"}
{"command":"true","cpus":"2","memory":67108864}
`, "--ndjson", "-k")
	require.Equal(t, 1, code, stderr)
	got := make([]string, 0, len(results))
	for _, r := range results {
		got = append(got, fmt.Sprint(r.ExitCode, " ", strings.Contains(r.Error, `"cpus"`) || strings.Contains(r.Error, `"memory"`)))
	}
	require.Equal(t, []string{"-1 true", "-1 true", "-1 true", "0 false"}, got)
	require.True(t, slices.IsSortedFunc(results, func(a, b spanResult) int { return int(a.Seq - b.Seq) }))
}
