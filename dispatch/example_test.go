//go:build unix

package dispatch_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/job"
)

// A pool of two runs three commands as child processes and reports one
// result for each, in the order they finish.
func Example() {
	local, err := dispatch.NewLocal(dispatch.LocalOptions{})
	if err != nil {
		panic(err)
	}
	defer local.Close()
	pool := dispatch.NewPool(local, dispatch.Options{Workers: 2})

	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		tasks <- job.Task{Seq: 1, Identifier: "greet", Command: "echo", Args: []string{"hello"}}
		tasks <- job.Task{Seq: 2, Identifier: "fail", Command: "sh", Args: []string{"-c", "exit 3"}}
		tasks <- job.Task{Seq: 3, Identifier: "missing", Command: "no-such-command"}
	}()
	ctx := context.Background()
	byID := map[string]job.Result{}
	for r := range pool.Run(ctx, ctx, tasks) {
		byID[r.Identifier] = r
		r.Close()
	}
	for _, id := range []string{"greet", "fail", "missing"} {
		r := byID[id]
		fmt.Printf("%s: exit %d %q %v\n", id, r.ExitCode, strings.TrimSpace(r.Stdout.String()), r.Err)
	}
	// Output:
	// greet: exit 0 "hello" <nil>
	// fail: exit 3 "" <nil>
	// missing: exit 127 "" command not found: no-such-command
}
