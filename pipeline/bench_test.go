package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/job"
)

// echoExec answers every task at once with a short output, without a
// process.
type echoExec struct{}

func (echoExec) Execute(_ context.Context, t *job.Task) job.Result {
	return job.Result{Seq: t.Seq, Identifier: t.Identifier, Started: true, Stdout: job.BytesOutput([]byte("hello\n"))}
}

// BenchmarkRun is a whole run's cost per task but for the process: decode
// an NDJSON task, admit it, pool it, order it (ordered), encode its result.
// One op is one task.
func BenchmarkRun(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"ndjson-t2", Config{Mode: encode.NDJSON{}, Workers: 2}},
		{"ndjson-t8", Config{Mode: encode.NDJSON{}, Workers: 8}},
		{"ordered-t8", Config{Mode: encode.NDJSON{}, Ordered: true, Workers: 8}},
		{"array-t2", Config{Workers: 2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var input bytes.Buffer
			for i := range b.N {
				fmt.Fprintf(&input, `{"identifier":"task-%d","command":"/bin/echo","args":["hello"]}`+"\n", i)
			}
			cfg := bc.cfg
			cfg.Executor = echoExec{}
			b.ReportAllocs()
			b.ResetTimer()
			sum, err := Run(context.Background(), cfg, &input, io.Discard)
			if err != nil || sum.Results != int64(b.N) {
				b.Fatalf("%d results of %d: %v", sum.Results, b.N, err)
			}
		})
	}
}
