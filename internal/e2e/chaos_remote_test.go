//go:build linux

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/sshtest"
)

// TestChaosRemote runs 2,000 tasks over three sshd hosts while a monkey
// freezes and thaws agents and whole hosts at random, and kills one host
// for good. Every task must get exactly one result: its own output, or an
// error saying its hosts were lost; the run must end before a deadline;
// and once every host is thawed, nothing the run started is left on any.
func TestChaosRemote(t *testing.T) {
	tasks := 2000
	if testing.Short() {
		tasks = 400
	}
	r := newRig(t, hostSpec{true}, hostSpec{true}, hostSpec{true})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed: %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	var input strings.Builder
	for i := 1; i <= tasks; i++ {
		fmt.Fprintf(&input, `{"identifier":"t%d","command":"sh","args":["-c","sleep 0.%02d; printf %%s t%d"]}`+"\n", i, 5+rng.IntN(10), i)
	}
	p := r.start(t, input.String(), "-S", "6/h1,6/h2,6/h3", "--ssh", r.ssh(), "--ndjson", "--timeout", "20s", "--grace", "1s", "-v")
	m := &hostMonkey{t: t, hosts: r.hosts.List, rng: rng}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { m.run(stop) })

	var got []remoteResult
	deadline := time.After(5 * time.Minute)
	for len(got) < tasks {
		select {
		case res, ok := <-p.lines:
			require.True(t, ok, "the pool ended after %d results; stderr: %s", len(got), p.stderr)
			got = append(got, res)
		case <-deadline:
			close(stop)
			wg.Wait()
			m.thawAll()
			t.Fatalf("%d of %d results after 5 minutes: a hang; stderr: %s", len(got), tasks, p.stderr)
		}
	}
	close(stop)
	wg.Wait()
	m.thawAll()
	code, rest := p.wait()
	require.Empty(t, rest, "no result past one per task")
	require.Contains(t, []int{0, 1}, code, p.stderr.String())

	seen := map[string]bool{}
	lost := 0
	for _, res := range got {
		require.False(t, seen[res.Identifier], "two results for %s", res.Identifier)
		seen[res.Identifier] = true
		if res.ExitCode == 0 {
			require.Equal(t, res.Identifier, res.Body, "%+v", res)
			continue
		}
		require.Contains(t, res.Error, "host lost", "%+v", res)
		lost++
	}
	t.Logf("%d tasks, %d failed with their hosts; the monkey: %s", tasks, lost, m)
	for _, h := range r.hosts.List {
		noneLeft(t, h)
	}
}

// hostMonkey freezes and thaws agents and hosts, and kills the last host
// once, one strike a second or so.
type hostMonkey struct {
	t     *testing.T
	hosts []*sshtest.Host
	rng   *rand.Rand

	mu      sync.Mutex
	frozen  map[*sshtest.Host]time.Time // host frozen, until when
	agents  map[int]time.Time           // agent pid stopped, until when
	strikes int
	killed  bool
	actions map[string]int
}

func (m *hostMonkey) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprint(m.actions)
}

func (m *hostMonkey) run(stop <-chan struct{}) {
	m.frozen, m.agents, m.actions = map[*sshtest.Host]time.Time{}, map[int]time.Time{}, map[string]int{}
	// Let the hosts come up and take work first.
	select {
	case <-time.After(2 * time.Second):
	case <-stop:
		return
	}
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	next := time.Now()
	for {
		select {
		case <-tick.C:
		case <-stop:
			return
		}
		m.thawDue(time.Now())
		if time.Now().Before(next) {
			continue
		}
		next = time.Now().Add(time.Duration(500+m.rng.IntN(1000)) * time.Millisecond)
		m.strike()
	}
}

// strike does one thing to one host: freezes its agent or its sshd for
// one to eight seconds (past the heartbeat's limit, or not); the tenth
// strike kills the last host instead, for good.
func (m *hostMonkey) strike() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.strikes++
	last := m.hosts[len(m.hosts)-1]
	if m.strikes == 10 {
		if _, ok := m.frozen[last]; ok {
			last.Thaw()
			delete(m.frozen, last)
		}
		last.Kill()
		m.killed = true
		m.actions["host killed"]++
		return
	}
	h := m.hosts[m.rng.IntN(len(m.hosts))]
	if m.killed && h == last {
		return
	}
	until := time.Now().Add(time.Duration(1000+m.rng.IntN(7000)) * time.Millisecond)
	switch n := m.rng.IntN(2); {
	case n == 0:
		for _, pid := range h.Processes() {
			if isAgent(pid) {
				if _, stopped := m.agents[pid]; !stopped && syscall.Kill(pid, syscall.SIGSTOP) == nil {
					m.agents[pid] = until
					m.actions["agent frozen"]++
				}
				break
			}
		}
	default:
		if _, ok := m.frozen[h]; !ok {
			h.Freeze()
			m.frozen[h] = until
			m.actions["host frozen"]++
		}
	}
}

// thawDue thaws what was frozen until now.
func (m *hostMonkey) thawDue(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, until := range m.frozen {
		if now.After(until) {
			h.Thaw()
			delete(m.frozen, h)
		}
	}
	for pid, until := range m.agents {
		if now.After(until) {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			delete(m.agents, pid)
		}
	}
}

// thawAll thaws everything still frozen.
func (m *hostMonkey) thawAll() {
	m.thawDue(time.Now().Add(time.Hour))
}

// isAgent tells whether pid is a workerpool agent.
func isAgent(pid int) bool {
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.Contains(string(cmdline), "\x00--agent\x00")
}
