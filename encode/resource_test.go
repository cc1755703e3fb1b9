package encode

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestEventResource: a waiting or requeued line names the resource.
func TestEventResource(t *testing.T) {
	var out bytes.Buffer
	e := NewEncoder(&out, Options{Mode: NDJSON{}, Events: true})
	task := &job.Task{Seq: 3, Identifier: "c"}
	require.NoError(t, e.Event(job.Event{Kind: job.Waiting, Task: task, Attempt: 1, Resource: "load"}))
	require.NoError(t, e.Event(job.Event{Kind: job.Requeued, Task: task, Attempt: 1, Resource: "memfree"}))
	require.Equal(t, `{"event":"waiting","identifier":"c","seq":3,"attempt":1,"resource":"load"}
{"event":"requeued","identifier":"c","seq":3,"attempt":1,"resource":"memfree"}
`, out.String())
}
