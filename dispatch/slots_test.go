package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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

func (f *fakeSlots) TryAcquire(job.Request) (Slot, <-chan struct{}, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
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
			return &fakeSlot{f: f, host: h}, nil, "", nil
		}
	}
	if f.downed["a"] && f.downed["b"] {
		return nil, nil, "", errors.New("no host left")
	}
	return nil, f.wake, job.ResourceCPUs, nil
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

// observerFunc is an Observer that is a function.
type observerFunc func(job.Event)

func (f observerFunc) Observe(ev job.Event) { f(ev) }

// TestPoolSlotAfterFinish: a slot is given back only once the observer has
// heard that its task finished, so an observer that closes the intake then
// (a halt) keeps the next task from starting in that slot.
func TestPoolSlotAfterFinish(t *testing.T) {
	for range 5 {
		f := newFakeSlots()
		f.downed["b"] = true // one slot: "a"
		intake, halt := context.WithCancelCause(context.Background())
		stop := observerFunc(func(ev job.Event) {
			if ev.Kind == job.Finished && ev.Result.Failed() {
				// Time for the next task to take the slot, were it given
				// back already: the test passes however long this takes.
				time.Sleep(20 * time.Millisecond)
				halt(job.ErrSkipped)
			}
		})
		p := NewPool(f, Options{Observer: stop})
		got := collect(p.Run(context.Background(), intake, feed("fail", "ok", "ok")))
		require.Len(t, got, 3)
		require.Equal(t, 1, got[1].ExitCode)
		for _, seq := range []int64{2, 3} {
			require.False(t, got[seq].Started, "task %d started after the halt", seq)
			require.ErrorIs(t, got[seq].Err, job.ErrSkipped)
		}
	}
}

// numberSlots is size slots on one host, "h". Each attempt it runs reads the number of
// its slot from its task's first argument ("{%}") and records it, with an
// error when the number is not in 1..size or another running attempt has
// it too. The commands:
//
//   - "meet" waits until size "meet" attempts have begun, so that every
//     slot is in use at once;
//   - "hold" waits until an attempt of a task after it has ended;
//   - "lose" loses the host on its first attempt, and the slot with it;
//   - "lose-queued" loses the host on its first attempt once a task
//     waits for a slot; the host comes back at once, so the slot is free
//     again once released;
//   - anything else ends at once.
//
// Used as a plain Executor (hidden in a struct), it checks the numbers of a
// pool of size workers.
type numberSlots struct {
	size   int
	until  int           // attempts to end before enough is closed
	enough chan struct{} // closed once until attempts have ended

	mu      sync.Mutex
	free    int             // slots not held
	waits   int             // calls of TryAcquire that found no slot free
	running map[int]bool    // the numbers of the running attempts
	seen    map[int64][]int // the numbers of each task's attempts, by seq
	meets   int             // "meet" attempts begun
	ended   int             // attempts ended
	later   int64           // the highest seq of an attempt ended
	errs    []string
	changed chan struct{} // closed, and replaced, at every change
}

func newNumberSlots(size, until int) *numberSlots {
	return &numberSlots{size: size, until: until, enough: make(chan struct{}), free: size,
		running: map[int]bool{}, seen: map[int64][]int{}, changed: make(chan struct{})}
}

func (f *numberSlots) TryAcquire(job.Request) (Slot, <-chan struct{}, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.free > 0 {
		f.free--
		return &numberSlot{f: f}, nil, "", nil
	}
	f.waits++
	f.changedLocked()
	return nil, f.changed, job.ResourceCPUs, nil
}

// putLocked frees a slot.
func (f *numberSlots) putLocked() {
	f.free++
	f.changedLocked()
}

func (f *numberSlots) changedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *numberSlots) failLocked(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

// await waits until ok, called with f.mu held, is true, or records an
// error after ten seconds.
func (f *numberSlots) await(what string, ok func() bool) {
	deadline := time.After(10 * time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	for !ok() {
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			f.mu.Lock()
			f.failLocked("timed out waiting until %s", what)
			return
		}
		f.mu.Lock()
	}
}

// Execute runs an attempt of t, as a slot would: it is the executor of a
// pool of size workers, when hidden in a struct.
func (f *numberSlots) Execute(_ context.Context, t *job.Task) job.Result {
	res, _ := f.attempt(t)
	return res
}

// attempt runs an attempt of t; lost reports that it lost the host.
func (f *numberSlots) attempt(t *job.Task) (res job.Result, lost bool) {
	n, err := strconv.Atoi(t.Args[0])
	f.mu.Lock()
	switch {
	case err != nil:
		f.failLocked("task %d: no slot number: %v", t.Seq, err)
	case n < 1 || n > f.size:
		f.failLocked("task %d ran in slot %d of %d", t.Seq, n, f.size)
	case f.running[n]:
		f.failLocked("task %d ran in slot %d while another task ran there", t.Seq, n)
	}
	f.running[n] = true
	f.seen[t.Seq] = append(f.seen[t.Seq], n)
	first := len(f.seen[t.Seq]) == 1
	if t.Command == "meet" {
		f.meets++
	}
	f.changedLocked()
	f.mu.Unlock()

	res = job.Result{Seq: t.Seq, Identifier: t.Identifier, Started: true}
	switch t.Command {
	case "meet":
		f.await("every slot is met", func() bool { return f.meets >= f.size })
	case "hold":
		f.await("a later task ends", func() bool { return f.later > t.Seq })
	case "lose-queued":
		if first {
			f.await("a task waits for a slot", func() bool { return f.waits > 0 })
		}
		fallthrough
	case "lose":
		if first {
			lost = true
			res.ExitCode, res.Err = job.ExitNeverStarted, fmt.Errorf("%w: h", job.ErrHostLost)
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, n)
	f.ended++
	if f.ended == f.until {
		close(f.enough)
	}
	f.later = max(f.later, t.Seq)
	f.changedLocked()
	return res, lost
}

type numberSlot struct {
	f    *numberSlots
	gone bool // its host was lost, with no way back
	once sync.Once
}

func (s *numberSlot) Host() string { return "h" }

func (s *numberSlot) Execute(_ context.Context, t *job.Task) job.Result {
	res, lost := s.f.attempt(t)
	s.gone = lost && t.Command == "lose"
	return res
}

func (s *numberSlot) Release() {
	s.once.Do(func() {
		s.f.mu.Lock()
		defer s.f.mu.Unlock()
		if !s.gone {
			s.f.putLocked()
		}
	})
}

// slotTasks sends tasks with the given commands, numbered from 1, whose one
// argument is "{%}", and closes.
func slotTasks(commands ...string) <-chan job.Task {
	ch := make(chan job.Task)
	go func() {
		defer close(ch)
		for i, c := range commands {
			ch <- job.Task{Seq: int64(i + 1), Identifier: fmt.Sprint(i + 1), Command: c,
				Args: []string{"{%}"}, SlotWords: [][]string{nil, {"", ""}}}
		}
	}()
	return ch
}

// TestPoolSlotNumbers: "{%}" names a number from 1 to the number of slots
// (or of workers), which no two running tasks share, even when the results
// wait for a slow reader, and a task that runs again after its host was
// lost keeps its number when no other task has taken it.
func TestPoolSlotNumbers(t *testing.T) {
	many := append(slices.Repeat([]string{"meet"}, 4), slices.Repeat([]string{"ok"}, 196)...)
	tests := []struct {
		name     string
		size     int  // slots, or workers when local
		local    bool // the executor has no slots: size workers run the tasks
		commands []string
		// wait is how many attempts end before the results are read: with
		// room for one result in the channel (Workers: 1), and one for each
		// worker blocked sending its own, the sixth attempt to end runs
		// after five have finished and four or more are still being sent.
		wait    int
		numbers map[int64][]int // the numbers of some tasks' attempts
	}{
		{name: "slow reader", size: 4, commands: many, wait: 6},
		{name: "slow reader, no slots", size: 4, local: true, commands: many, wait: 6},
		{name: "lost task keeps its number", size: 2, commands: []string{"hold", "lose"},
			numbers: map[int64][]int{1: {1}, 2: {2, 2}}},
		{name: "lost task gives its number back while it waits", size: 2, commands: []string{"lose-queued", "hold", "ok"},
			numbers: map[int64][]int{2: {2}, 3: {1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newNumberSlots(tt.size, tt.wait)
			var exec Executor = f
			opts := Options{Workers: 1}
			if tt.local {
				exec, opts.Workers = struct{ Executor }{f}, tt.size
			}
			results := runAll(NewPool(exec, opts), slotTasks(tt.commands...))
			if tt.wait > 0 {
				<-f.enough
			}
			n := 0
			for r := range results {
				require.Equal(t, 0, r.ExitCode, "task %d: %v", r.Seq, r.Err)
				n++
			}
			require.Equal(t, len(tt.commands), n)
			f.mu.Lock()
			defer f.mu.Unlock()
			require.Empty(t, f.errs)
			for seq, want := range tt.numbers {
				require.Equal(t, want, f.seen[seq], "the numbers of task %d", seq)
			}
		})
	}
}
