package dispatch

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/workerpool/workerpool/job"
)

// ErrTooLarge marks a task that asks for more than any place to run it
// has: more CPUs than any host has slots, or more memory than any host has.
var ErrTooLarge = errors.New("no place can ever hold the task")

// TooLarge is the error of a task that asks for need where the most that
// any place has is slots slots (on the place named slotsAt) and memory
// bytes of memory (on memoryAt; 0 is no bound).
func TooLarge(need job.Request, slots int, slotsAt string, memory int64, memoryAt string) error {
	most := fmt.Sprintf("%d slots (%s)", slots, slotsAt)
	if memory > 0 {
		most += fmt.Sprintf(" and %s of memory (%s)", job.FormatSize(memory), memoryAt)
	}
	return fmt.Errorf("%w: it asks for %s; the largest place has %s", ErrTooLarge, need, most)
}

// room is what this machine has for the tasks of a run without Slots: the
// pool's Workers slots and, when Memory is set, that much memory. A task
// takes its request (job.Request) when it starts and gives it back when it
// ends. Its methods may be called from many goroutines at once.
type room struct {
	slots  int
	memory int64 // 0: no bound
	// given holds a token once room has been given back since the feed,
	// the one that waits for room, last took it: a signal that outlives a
	// give that comes before the feed waits, and costs no allocation.
	given chan struct{}

	mu       sync.Mutex
	freeCPUs int
	freeMem  int64
}

func newRoom(slots int, memory int64) *room {
	return &room{slots: slots, memory: memory, freeCPUs: slots, freeMem: memory, given: make(chan struct{}, 1)}
}

// take takes need, when it is free, and returns true. Otherwise it returns
// a channel that is ready once some room has been given back, and the
// resource that is short; or an error when need is more than the machine
// has. Only one goroutine (the feed) may wait on the channel.
func (m *room) take(need job.Request) (ok bool, wake <-chan struct{}, short string, err error) {
	if err := m.holds(need); err != nil {
		return false, nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case need.CPUs > m.freeCPUs:
		short = job.ResourceCPUs
	case m.memory > 0 && need.Memory > m.freeMem:
		short = job.ResourceMemory
	default:
		m.freeCPUs -= need.CPUs
		m.freeMem -= need.Memory
		return true, nil, "", nil
	}
	return false, m.given, short, nil
}

// holds returns the error of a task that asks for more than the machine
// has, or nil.
func (m *room) holds(need job.Request) error { return FitsHere(need, m.slots, m.memory) }

// FitsHere returns the error of a task that asks for more than this
// machine has, slots (-j) and memory (0: no bound), or nil.
func FitsHere(need job.Request, slots int, memory int64) error {
	if need.CPUs > slots || memory > 0 && need.Memory > memory {
		return TooLarge(need, slots, "this machine, -j", memory, "this machine")
	}
	return nil
}

// give gives back need, from take, and wakes those waiting for room.
func (m *room) give(need job.Request) {
	m.mu.Lock()
	m.freeCPUs += need.CPUs
	m.freeMem += need.Memory
	m.mu.Unlock()
	select {
	case m.given <- struct{}{}:
	default: // a token waits already
	}
}

// queue is the tasks the feed has read that wait for room, in input order:
// the first is the head. The head is passed by later tasks that fit while
// it does not, but at most maxPassed times; then nothing behind it starts
// until it has, so that the room it needs comes free. maxPassed is the
// pool's Workers: a large task waits at most about one round of the
// pool's slots.
type queue struct {
	tasks     []*job.Task
	passed    int       // tasks started ahead of the head
	since     time.Time // when the head began to wait; zero unless it asks for room (asksForRoom)
	told      bool      // the head's Waiting event has been sent
	short     string    // what the head waits for, when it last tried
	maxPassed int
	timer     *time.Timer // for the head's Waiting event; nil until needed
	armed     time.Time   // the since of the head the timer is armed for
}

// reading reports whether the feed should read more tasks: while none
// waits, or while those behind the head may still pass it.
func (q *queue) reading() bool {
	return len(q.tasks) == 0 || q.passed < q.maxPassed && len(q.tasks) <= q.maxPassed
}

// remove takes task i out of the queue; the head's removal makes the next
// task the head.
func (q *queue) remove(i int) {
	q.tasks[i] = nil
	q.tasks = slices.Delete(q.tasks, i, i+1)
	if i == 0 {
		q.passed, q.told, q.since = 0, false, time.Time{}
	} else {
		q.passed++
	}
}

// timerC is the channel of the timer for the head's Waiting event, armed
// for when the head will have waited waitNotice; nil when no Waiting
// event is due.
func (q *queue) timerC() <-chan time.Time {
	if len(q.tasks) == 0 || q.told || q.since.IsZero() {
		return nil
	}
	if q.armed.Equal(q.since) {
		return q.timer.C
	}
	q.armed = q.since
	left := waitNotice - time.Since(q.since)
	if q.timer == nil {
		q.timer = time.NewTimer(left)
	} else {
		q.timer.Reset(left)
	}
	return q.timer.C
}

// place takes room for t: a slot of the executor's that has room for
// t.Request, or, without Slots, the room of this machine. Without room
// now, it returns a channel closed at the next change of the room free,
// and which resource is short. An error is a task that cannot run at all.
func (r *run) place(t *job.Task) (a assignment, ok bool, wake <-chan struct{}, short string, err error) {
	a.t = t
	if r.slots == nil {
		ok, wake, short, err = r.room.take(t.Request)
		return a, ok, wake, short, err
	}
	slot, wake, short, err := r.slots.TryAcquire(t.Request)
	if slot == nil {
		return a, false, wake, short, err
	}
	a.slot = &numberedSlot{Slot: slot, number: r.numbers.take(0), numbers: &r.numbers}
	return a, true, nil, "", nil
}

// giveBack gives back the room an assignment holds.
func (r *run) giveBack(a assignment) {
	if a.slot != nil {
		a.slot.Release()
	} else {
		r.room.give(a.t.Request)
	}
}

// startWaiting starts the tasks of q that fit, in order, as the queue's
// rule allows, and answers those that cannot run. It returns a channel
// closed when room is given back, when a task still waits.
func (r *run) startWaiting(q *queue) <-chan struct{} {
	var wake <-chan struct{}
	for i := 0; i < len(q.tasks) && (i == 0 || q.passed < q.maxPassed); {
		t := q.tasks[i]
		// A task that asks for as much as the head, which does not fit,
		// does not fit either. With hosts, only one that asks for the same
		// is passed over untried: a larger one may fit on no host ever,
		// which trying tells at once.
		if i > 0 && covers(t.Request, q.tasks[0].Request) && (r.room != nil || t.Request == q.tasks[0].Request) {
			i++
			continue
		}
		a, ok, w, short, err := r.place(t)
		switch {
		case err != nil:
			q.remove(i)
			r.noRoom(t, err)
		case ok:
			q.remove(i)
			r.hand(a)
		default:
			if i == 0 && asksForRoom(t.Request) {
				q.short = short
				if q.since.IsZero() {
					q.since = time.Now()
				}
			}
			wake = w
			i++
		}
	}
	return wake
}

// covers reports whether a asks for at least as much as b of every
// resource: where b does not fit, neither does a.
func covers(a, b job.Request) bool { return a.CPUs >= b.CPUs && a.Memory >= b.Memory }

// asksForRoom reports whether a task asks for more than its turn in one
// slot: more slots, or memory. Only such a task has a Waiting event when it
// waits for room; a task of one slot that waits for it is only waiting its
// turn, as every task does when there are more tasks than slots.
func asksForRoom(need job.Request) bool { return need.CPUs > 1 || need.Memory > 0 }

// waited tells, once, of a head that has waited waitNotice: a Waiting
// event saying what for.
func (r *run) waited(q *queue) {
	if len(q.tasks) == 0 || q.told || q.since.IsZero() || time.Since(q.since) < waitNotice {
		return
	}
	q.told = true
	t := q.tasks[0]
	r.log.Info("task waiting", "seq", t.Seq, "identifier", t.Identifier, "for", q.short)
	r.observe(job.Event{Kind: job.Waiting, Task: t, Resource: q.short})
}

// noRoom answers a task that cannot run: it is too large for every place,
// or no slot can come.
func (r *run) noRoom(t *job.Task, err error) {
	if errors.Is(err, ErrTooLarge) && r.intake.Err() == nil {
		r.log.Warn("task too large", "seq", t.Seq, "identifier", t.Identifier, "error", err)
		r.emit(t, job.NotRun(t, err))
		return
	}
	r.noSlot(t, err)
}

// drain answers every task of q, the intake being closed.
func (r *run) drain(q *queue) {
	for _, t := range q.tasks {
		r.notRun(t)
	}
	q.tasks = q.tasks[:0]
	q.passed, q.told, q.since = 0, false, time.Time{}
}
