//go:build linux

package e2e

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/sshtest"
)

// TestRemoteRequestCPUs: with two hosts of 2 and 4 slots, tasks of
// "cpus": 3 run only on the host of 4, one at a time there, while tasks
// of 1 run on both; a task of 5 is told at once that no host has room
// for it, naming the largest.
func TestRemoteRequestCPUs(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true})
	var input strings.Builder
	for i := range 12 {
		if i%3 == 0 {
			input.WriteString(`{"command":"sleep","args":["0.3"],"cpus":3}` + "\n")
		} else {
			input.WriteString(`{"command":"sleep","args":["0.3"]}` + "\n")
		}
	}
	input.WriteString(`{"command":"true","cpus":5}` + "\n")
	code, results, stderr := r.run(t, input.String(), "-S", "2/h1", "-S", "4/h2", "--ssh", r.ssh(), "--ndjson")
	require.Equal(t, 1, code, stderr)
	require.Len(t, results, 13)
	used := map[string]int{}
	var big []span
	byHost := map[string][]span{}
	for _, res := range results {
		switch {
		case res.Seq == 13:
			require.Equal(t, -1, res.ExitCode)
			require.Contains(t, res.Error, "it asks for 5 cpus; the largest place has 4 slots (h2)")
			continue
		case (res.Seq-1)%3 == 0:
			require.Equal(t, "h2", res.Host, "a task of 3 cpus runs only on the host of 4 slots")
		}
		require.Equal(t, 0, res.ExitCode, "%+v", res)
		used[res.Host]++
		weight := int64(1)
		if (res.Seq-1)%3 == 0 {
			weight = 3
		}
		start, err := time.Parse(time.RFC3339Nano, res.StartedAt)
		require.NoError(t, err)
		end, err := time.Parse(time.RFC3339Nano, res.EndedAt)
		require.NoError(t, err)
		s := span{seq: res.Seq, start: start, end: end, weight: weight}
		byHost[res.Host] = append(byHost[res.Host], s)
		if weight == 3 {
			big = append(big, s)
		}
	}
	require.Len(t, big, 4)
	require.Positive(t, used["h1"], "small tasks run on the small host too")
	require.LessOrEqual(t, peakOf(byHost["h1"]), int64(2))
	require.LessOrEqual(t, peakOf(byHost["h2"]), int64(4))
}

// TestRemoteRequestAnnouncedCPUs: two hosts whose sshd runs on 1 and on 2
// of this machine's CPUs, named without a count and without -j, have as
// many slots as their agents announce in their hello. Tasks of "cpus": 2
// run only on the host of 2, tasks of 1 on both, one at a time on the host
// of 1, and a task of 3 is told at once that the largest place has 2.
func TestRemoteRequestAnnouncedCPUs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs, to give two hosts different numbers of them")
	}
	path := filepath.Dir(program) + ":/usr/local/bin:/usr/bin:/bin"
	r := &rig{bin: program, hosts: sshtest.Start(t,
		sshtest.Spec{Env: map[string]string{"PATH": path, "HOME": t.TempDir()}, CPUs: 1},
		sshtest.Spec{Env: map[string]string{"PATH": path, "HOME": t.TempDir()}, CPUs: 2},
	)}
	var input strings.Builder
	for i := range 12 {
		if i%2 == 0 {
			input.WriteString(`{"command":"sh","args":["-c","sleep 0.2; nproc"],"cpus":2}` + "\n")
		} else {
			input.WriteString(`{"command":"sh","args":["-c","sleep 0.2; nproc"]}` + "\n")
		}
	}
	input.WriteString(`{"command":"true","cpus":3}` + "\n")
	code, results, stderr := r.run(t, input.String(), "-S", "h1", "-S", "h2", "--ssh", r.ssh(), "--ndjson")
	require.Equal(t, 1, code, stderr)
	require.Len(t, results, 13)
	byHost := map[string][]span{}
	for _, res := range results {
		if res.Seq == 13 {
			require.Equal(t, -1, res.ExitCode)
			require.Contains(t, res.Error, "it asks for 3 cpus; the largest place has 2 slots (h2)")
			continue
		}
		require.Equal(t, 0, res.ExitCode, "%+v", res)
		cpus := map[string]string{"h1": "1", "h2": "2"}[res.Host]
		require.Equal(t, cpus, strings.TrimSpace(res.Body), "nproc on %s", res.Host)
		weight := int64(1)
		if res.Seq%2 == 1 {
			weight = 2
			require.Equal(t, "h2", res.Host, "a task of 2 cpus runs only on the host of 2")
		}
		start, err := time.Parse(time.RFC3339Nano, res.StartedAt)
		require.NoError(t, err)
		end, err := time.Parse(time.RFC3339Nano, res.EndedAt)
		require.NoError(t, err)
		byHost[res.Host] = append(byHost[res.Host], span{seq: res.Seq, start: start, end: end, weight: weight})
	}
	require.NotEmpty(t, byHost["h1"], "tasks of 1 cpu run on the host of 1 too")
	require.LessOrEqual(t, peakOf(byHost["h1"]), int64(1))
	require.LessOrEqual(t, peakOf(byHost["h2"]), int64(2))
}
