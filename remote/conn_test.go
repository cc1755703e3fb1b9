package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHelloTimeout: the pool waits helloTimeout for an agent's hello,
// past what a login prints first, and no longer; then it stops the agent
// and says so. A context done first ends the wait with its cause.
func TestHelloTimeout(t *testing.T) {
	hi := fmt.Sprintf(`{"workerpool_agent":"v1","protocol":%d,"cpus":4}`+"\n", Protocol)
	for _, tc := range []struct {
		name  string
		hello string        // written to the pool, after a banner, at 29 s
		end   time.Duration // when it is given up
		want  string        // the error, if it is given up
	}{
		{"in time", hi, 0, ""},
		{"too late", "", helloTimeout, "no answer within 30s"},
		{"cancelled", "", 10 * time.Second, "interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, w := io.Pipe()
				ctx, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				if tc.end > 0 && tc.end < helloTimeout {
					time.AfterFunc(tc.end, func() { cancel(errors.New(tc.want)) })
				}
				start := time.Now()
				stopped := time.Duration(-1)
				var h hello
				var read bool
				var err error
				done := make(chan struct{})
				go func() {
					defer close(done)
					read, err = awaitHello(ctx, bufio.NewReader(r), &h, func() {
						stopped = time.Since(start)
						w.Close()
					})
				}()
				_, werr := io.WriteString(w, "Welcome to h1!\n")
				require.NoError(t, werr)
				time.Sleep(helloTimeout - time.Second)
				if tc.hello != "" {
					_, werr = io.WriteString(w, tc.hello)
					require.NoError(t, werr)
				}
				<-done
				if tc.want == "" {
					require.True(t, read)
					require.NoError(t, err)
					require.Equal(t, 4, h.CPUs)
					require.Equal(t, time.Duration(-1), stopped, "an agent that said hello is not stopped")
					return
				}
				require.False(t, read)
				require.EqualError(t, err, tc.want)
				require.Equal(t, tc.end, stopped, "stopped when it was given up")
			})
		})
	}
}
