package dispatch

import (
	"context"
	"fmt"
	"testing"

	"github.com/workerpool/workerpool/job"
)

// The per-task path, for `make bench-go` (-benchmem): a change that adds an
// allocation or a handoff per task shows up here.

// instant answers every task at once, without a process.
type instant struct{}

func (instant) Execute(_ context.Context, t *job.Task) job.Result {
	return job.Result{Seq: t.Seq, Identifier: t.Identifier, Started: true}
}

// BenchmarkPoolRun is the pool's own cost per task: feed, hand to a worker,
// run (instantly), emit.
func BenchmarkPoolRun(b *testing.B) {
	for _, workers := range []int{2, 8} {
		b.Run(fmt.Sprintf("t%d", workers), func(b *testing.B) {
			pool := NewPool(instant{}, Options{Workers: workers})
			tasks := make(chan job.Task)
			ctx := context.Background()
			results := pool.Run(ctx, ctx, tasks)
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for i := range b.N {
					tasks <- job.Task{Seq: int64(i + 1), Identifier: "t", Command: "true"}
				}
				close(tasks)
			}()
			for range results {
			}
		})
	}
}

// BenchmarkLocalExecute is one run of /bin/true as a task: prepare, spawn,
// capture stdout and stderr, wait, read the outcome. Most of its time is
// the kernel's; its allocations are the executor's.
func BenchmarkLocalExecute(b *testing.B) {
	l, err := NewLocal(LocalOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	t := &job.Task{Seq: 1, Identifier: "1", Command: "true"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r := l.Execute(ctx, t)
		if r.ExitCode != 0 || r.Err != nil {
			b.Fatalf("exit %d: %v", r.ExitCode, r.Err)
		}
		r.Close()
	}
}
