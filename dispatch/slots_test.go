package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// fakeSlots is two hosts, "a" and "b", of one slot each. A task whose
// command is "lose" loses the host it runs on, unless one is lost already;
// "lose-all" loses it always; "fail" fails.
type fakeSlots struct {
	mu     sync.Mutex
	free   map[string]bool
	downed map[string]bool
	peak   int
	wake   chan struct{}
	pairs  int           // "pair" tasks begun
	met    chan struct{} // closed when the second "pair" task begins
}

func newFakeSlots() *fakeSlots {
	return &fakeSlots{free: map[string]bool{"a": true, "b": true}, downed: map[string]bool{}, wake: make(chan struct{}), met: make(chan struct{})}
}

func (f *fakeSlots) Execute(context.Context, *job.Task) job.Result {
	panic("the pool runs tasks in slots")
}

func (f *fakeSlots) Acquire(ctx context.Context) (Slot, error) {
	for {
		f.mu.Lock()
		for _, h := range []string{"a", "b"} {
			if f.free[h] && !f.downed[h] {
				f.free[h] = false
				busy := 0
				for _, free := range f.free {
					if !free {
						busy++
					}
				}
				f.peak = max(f.peak, busy)
				f.mu.Unlock()
				return &fakeSlot{f: f, host: h}, nil
			}
		}
		if f.downed["a"] && f.downed["b"] {
			f.mu.Unlock()
			return nil, errors.New("no host left")
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

func (f *fakeSlots) changed() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// lose takes host down, unless a host is down already.
func (f *fakeSlots) lose(host string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.downed) > 0 {
		return false
	}
	f.downed[host] = true
	f.changed()
	return true
}

type fakeSlot struct {
	f    *fakeSlots
	host string
	once sync.Once
}

func (s *fakeSlot) Host() string { return s.host }

func (s *fakeSlot) Release() {
	s.once.Do(func() {
		s.f.mu.Lock()
		defer s.f.mu.Unlock()
		s.f.free[s.host] = true
		s.f.changed()
	})
}

func (s *fakeSlot) Execute(_ context.Context, t *job.Task) job.Result {
	r := job.Result{Seq: t.Seq, Identifier: t.Identifier, Started: true}
	switch {
	case t.Command == "lose" && s.f.lose(s.host):
		r.ExitCode, r.Err = job.ExitNeverStarted, fmt.Errorf("%w: %s", job.ErrHostLost, s.host)
	case t.Command == "lose-all":
		s.f.mu.Lock()
		s.f.downed[s.host] = true
		s.f.changed()
		s.f.mu.Unlock()
		r.ExitCode, r.Err = job.ExitNeverStarted, fmt.Errorf("%w: %s", job.ErrHostLost, s.host)
	case t.Command == "fail":
		r.ExitCode = 1
	case t.Command == "pair": // ends once two run at once, or fails
		s.f.mu.Lock()
		s.f.pairs++
		if s.f.pairs == 2 {
			close(s.f.met)
		}
		s.f.mu.Unlock()
		select {
		case <-s.f.met:
		case <-time.After(10 * time.Second):
			r.ExitCode = 1
		}
	}
	return r
}

// TestPoolSlots: with slots, tasks run at most one per slot; a task whose
// host is lost runs again on the other host without spending a retry, and
// the result names where it ran.
func TestPoolSlots(t *testing.T) {
	f := newFakeSlots()
	ev := &recorder{}
	p := NewPool(f, Options{Workers: 1, Observer: ev})
	commands := []string{"pair", "pair", "lose", "ok", "fail", "ok"}
	var results []job.Result
	for r := range runAll(p, feed(commands...)) {
		results = append(results, r)
	}
	require.Len(t, results, len(commands))
	require.LessOrEqual(t, f.peak, 2, "no more tasks at once than slots")
	for _, r := range results {
		switch r.Seq {
		case 1, 2:
			require.Equal(t, 0, r.ExitCode, "Workers plays no part: both slots are used at once")
		case 3:
			require.NoError(t, r.Err)
			require.Equal(t, 2, r.Attempts, "the lost attempt counts")
		case 5:
			require.Equal(t, 1, r.ExitCode)
			require.Equal(t, 1, r.Attempts, "no retries asked for")
		}
	}
	lost, other := "a", "b"
	if f.downed["b"] {
		lost, other = "b", "a"
	}
	for _, r := range results {
		if r.Seq > 3 {
			require.Equal(t, other, r.Host, "no task runs on the lost host")
		}
	}
	require.Equal(t, []string{"started 1 " + lost, "retrying 1 " + lost, "finished 2 " + other}, ev.hostEvents(3))
}

// TestPoolNoSlots: when every host is lost, the task in flight and the
// tasks after it get results that say so.
func TestPoolNoSlots(t *testing.T) {
	f := newFakeSlots()
	p := NewPool(f, Options{})
	var results []job.Result
	for r := range runAll(p, feed("lose-all", "lose-all", "ok", "ok")) {
		results = append(results, r)
	}
	require.Len(t, results, 4)
	for _, r := range results {
		require.Equal(t, job.ExitNeverStarted, r.ExitCode)
		require.ErrorContains(t, r.Err, "no host left")
	}
}
