//go:build linux

package sshtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/workerpool/workerpool/internal/testlab"
)

// MarkerVar is the name of the environment variable that every session on
// a host carries. Its value is the host's Marker.
const MarkerVar = "WORKERPOOL_SSHTEST"

const (
	// waitLimit bounds every wait: sshd start-up, a kill taking effect,
	// processes stopping.
	waitLimit = 10 * time.Second
	// pollEvery is the interval between two checks while waiting.
	pollEvery = 10 * time.Millisecond
	// startAttempts is how many ports Start tries for one host before
	// giving up.
	startAttempts = 5
)

// Spec describes one host to start.
type Spec struct {
	// Env is set in every session on the host, through the SetEnv
	// directive of sshd_config. It overrides what sshd sets itself, such
	// as PATH and HOME. Keys must not contain '=' or white space, values
	// must not contain '"', '\\' or line breaks, and the key
	// WORKERPOOL_SSHTEST is reserved.
	//
	// If Env has no HOME, HOME is an empty directory of the host's own,
	// <Dir>/<Alias>.home. The user's real home would otherwise leak into
	// the sessions: bash runs ~/.bashrc (found through $HOME) even for
	// the commands sshd runs, and a .bashrc may change PATH or be slow.
	// The session's working directory is the user's home directory from
	// the password database whatever HOME is.
	Env map[string]string
	// CPUs, when above 0, keeps sshd, and so every session, on the first
	// CPUs processors of this machine (sched_setaffinity): the programs run
	// there see that many (runtime.NumCPU, nproc), as on a smaller machine.
	// It must not exceed runtime.NumCPU().
	CPUs int
}

// Hosts is a set of sshd instances and the ssh client configuration that
// reaches them.
type Hosts struct {
	// Dir is the temporary directory that holds the keys, the
	// configurations and the sshd logs (hN.log). Its path contains no
	// white space.
	Dir string
	// Config is the path of an ssh_config file with one Host alias per
	// instance. It replaces the user's and the system's ssh
	// configuration when given to ssh with -F.
	Config string
	// SSH is the command that reaches the hosts, "ssh -F <Config>".
	// It holds no quoting and its words contain no spaces, so
	// strings.Fields splits it correctly.
	SSH string
	// List holds the instances in the order of the specs given to Start.
	List []*Host
}

// Host is one sshd instance.
type Host struct {
	// Alias is the Host alias of the instance in Hosts.Config: "h1" for
	// the first spec, "h2" for the second, and so on.
	Alias string
	// Port is the TCP port on 127.0.0.1 the instance listens on.
	Port int
	// Pid is the process id of the listening sshd.
	Pid int
	// Marker is a value unique to this instance. Every session on the
	// host has WORKERPOOL_SSHTEST=<Marker> in its environment, and so
	// has every process the session starts, unless it clears its
	// environment.
	Marker string

	t      testing.TB
	cpus   int           // Spec.CPUs
	log    string        // path of the sshd log
	cmd    *exec.Cmd     // the listener
	exited chan struct{} // closed once the listener has exited and been reaped
	mu     sync.Mutex    // serializes Kill, Freeze, Thaw and cleanup
}

// Start starts one sshd per spec and waits until each accepts connections.
// If an instance has not accepted a connection after 10 seconds, or exits
// on every one of a few attempts with different ports, Start calls t.Fatal
// with the instance's log.
//
// Start calls t.Fatal with "sshd not found: install openssh-server" when
// sshd is not installed, and likewise when ssh-keygen or ssh is missing.
//
// At t.Cleanup, every sshd started is killed: the listener and every sshd
// process descended from it. So is every process whose environment holds
// the Marker of one of the hosts, that is, whatever the sessions started
// and left running.
func Start(t testing.TB, specs ...Spec) *Hosts {
	t.Helper()
	sshd := findSSHD()
	if sshd == "" {
		t.Fatal("sshd not found: install openssh-server")
	}
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatal("ssh-keygen not found: install openssh-client")
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatal("ssh not found: install openssh-client")
	}
	for i, s := range specs {
		if err := checkEnv(s.Env); err != nil {
			t.Fatalf("sshtest: spec %d: %v", i, err)
		}
		if s.CPUs < 0 || s.CPUs > runtime.NumCPU() {
			t.Fatalf("sshtest: spec %d: CPUs %d: this machine has %d", i, s.CPUs, runtime.NumCPU())
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshtest: current user: %v", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshtest: privilege separation directory: %v", err)
	}

	dir := testlab.TempDir(t, "sshtest", 0) // paths ssh and sshd configurations can hold
	hs := &Hosts{
		Dir:    dir,
		Config: filepath.Join(dir, "ssh_config"),
	}
	hs.SSH = "ssh -F " + hs.Config

	// Registered before any sshd starts, so that a t.Fatal below still
	// kills whatever was started.
	var started []*Host
	t.Cleanup(func() {
		for _, h := range started {
			h.cleanup()
		}
	})

	hostKey := filepath.Join(dir, "host_key")
	clientKey := filepath.Join(dir, "client_key")
	for _, key := range []string{hostKey, clientKey} {
		out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "sshtest", "-f", key).CombinedOutput()
		if err != nil {
			t.Fatalf("sshtest: ssh-keygen: %v\n%s", err, out)
		}
	}
	hostPub := readFile(t, hostKey+".pub")
	authorizedKeys := filepath.Join(dir, "authorized_keys")
	writeFile(t, authorizedKeys, readFile(t, clientKey+".pub"))

	runID := randomHex(t, 6)
	for i, spec := range specs {
		h := &Host{
			Alias:  fmt.Sprintf("h%d", i+1),
			Marker: fmt.Sprintf("sshtest-%d-%s-h%d", os.Getpid(), runID, i+1),
			t:      t,
			cpus:   spec.CPUs,
		}
		h.log = filepath.Join(dir, h.Alias+".log")
		env := map[string]string{}
		for k, v := range spec.Env {
			env[k] = v
		}
		if _, ok := env["HOME"]; !ok {
			env["HOME"] = filepath.Join(dir, h.Alias+".home")
			if err := os.Mkdir(env["HOME"], 0o755); err != nil {
				t.Fatalf("sshtest: %v", err)
			}
		}
		var conf strings.Builder
		fmt.Fprintf(&conf, "HostKey %s\n", hostKey)
		fmt.Fprintf(&conf, "AuthorizedKeysFile %s\n", authorizedKeys)
		fmt.Fprintf(&conf, "PidFile %s\n", filepath.Join(dir, h.Alias+".pid"))
		conf.WriteString(sshdOptions)
		fmt.Fprintf(&conf, "SetEnv %s\n", setEnvArgs(h.Marker, env))
		started = append(started, h)
		h.start(sshd, filepath.Join(dir, h.Alias+".sshd_config"), conf.String())
		hs.List = append(hs.List, h)
	}

	var cfg, known strings.Builder
	for _, h := range hs.List {
		fmt.Fprintf(&cfg, "Host %s\n", h.Alias)
		fmt.Fprintf(&cfg, "\tHostName 127.0.0.1\n")
		fmt.Fprintf(&cfg, "\tPort %d\n", h.Port)
		fmt.Fprintf(&cfg, "\tUser %s\n", u.Username)
		fmt.Fprintf(&cfg, "\tIdentityFile %s\n", clientKey)
		fmt.Fprintf(&cfg, "\tUserKnownHostsFile %s\n", filepath.Join(dir, "known_hosts"))
		cfg.WriteString(sshOptions)
		fmt.Fprintf(&known, "[127.0.0.1]:%d %s\n", h.Port, strings.TrimSpace(hostPub))
	}
	writeFile(t, filepath.Join(dir, "known_hosts"), known.String())
	writeFile(t, hs.Config, cfg.String())
	return hs
}

// sshdOptions are the sshd_config lines common to every instance. The
// session environment comes from SetEnv alone: no PAM, no
// ~/.ssh/environment, no ~/.ssh/rc.
const sshdOptions = `StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitUserEnvironment no
PermitUserRC no
X11Forwarding no
PrintMotd no
UseDNS no
MaxSessions 100
MaxStartups 200
LogLevel VERBOSE
`

// sshOptions are the ssh_config lines common to every Host alias.
const sshOptions = `	IdentitiesOnly yes
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	UpdateHostKeys no
	CheckHostIP no
	BatchMode yes
	ControlMaster no
	ControlPath none
	LogLevel ERROR
`

// start runs sshd with the configuration conf plus a ListenAddress on a
// free port, retrying with other ports when sshd exits early, and waits
// until it accepts connections.
func (h *Host) start(sshd, confPath, conf string) {
	t := h.t
	t.Helper()
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("sshtest: %s: free port: %v", h.Alias, err)
		}
		writeFile(t, confPath, fmt.Sprintf("ListenAddress 127.0.0.1:%d\n%s", port, conf))
		logf, err := os.OpenFile(h.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatalf("sshtest: %s: %v", h.Alias, err)
		}
		fmt.Fprintf(logf, "--- sshtest: %s attempt %d, port %d\n", h.Alias, attempt, port)
		cmd := exec.Command(sshd, "-D", "-e", "-f", confPath)
		cmd.Stdout = logf
		cmd.Stderr = logf
		// Pdeathsig: should the test binary die before its cleanups run (a
		// -timeout panic), the listener dies with it, and the sessions with
		// their clients.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			t.Fatalf("sshtest: %s: start sshd: %v", h.Alias, err)
		}
		if h.cpus > 0 {
			// Before it accepts a connection: the sessions it forks
			// inherit the set.
			var set unix.CPUSet
			for cpu := range h.cpus {
				set.Set(cpu)
			}
			if err := unix.SchedSetaffinity(cmd.Process.Pid, &set); err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("sshtest: %s: keep sshd on %d CPUs: %v", h.Alias, h.cpus, err)
			}
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		h.mu.Lock()
		h.cmd, h.exited, h.Pid, h.Port = cmd, exited, cmd.Process.Pid, port
		h.mu.Unlock()

		switch h.waitReady() {
		case nil:
			return
		case errExited:
			if attempt < startAttempts {
				t.Logf("sshtest: %s: sshd exited at start on port %d, retrying with another port", h.Alias, port)
				continue
			}
			t.Fatalf("sshtest: %s: sshd exited at start %d times; log %s:\n%s", h.Alias, attempt, h.log, h.readLog())
		default:
			t.Fatalf("sshtest: %s: sshd did not accept connections on port %d within %v; log %s:\n%s",
				h.Alias, port, waitLimit, h.log, h.readLog())
		}
	}
}

var (
	errExited  = errors.New("sshd exited")
	errTimeout = errors.New("timed out")
)

// waitReady polls a TCP connection to the port until one succeeds, the
// listener exits, or waitLimit passes.
func (h *Host) waitReady() error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(h.Port))
	deadline := time.Now().Add(waitLimit)
	for {
		select {
		case <-h.exited:
			return errExited
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		select {
		case <-h.exited:
			return errExited
		case <-time.After(pollEvery):
		}
	}
}

// Kill kills this host's sshd with SIGKILL: the listener and every process
// named sshd descended from it, such as the per-connection processes. It
// does not kill the processes the sessions run; they must notice the closed
// connection by themselves. When Kill returns, the listener has exited and
// the host refuses connections. Calling Kill again does nothing.
//
// To leave no window in which an sshd could fork unseen, Kill first stops
// the listener and its sshd descendants with SIGSTOP, then kills them all.
// Errors are reported with t.Errorf.
func (h *Host) Kill() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone() {
		return
	}
	h.killTree()
	select {
	case <-h.exited:
	case <-time.After(waitLimit):
		h.t.Errorf("sshtest: %s: listener pid %d still running %v after SIGKILL", h.Alias, h.Pid, waitLimit)
	}
}

// Freeze stops the listener and every sshd process descended from it with
// SIGSTOP. When Freeze returns, all of them are stopped. A frozen host does
// not answer new connections: the kernel still completes the TCP handshake,
// but no SSH banner comes, so ssh waits until its ConnectTimeout, or
// forever without one. Sessions already open stay connected and their
// processes keep running, but no data is relayed until Thaw; an ssh client
// without ServerAliveInterval just waits. Errors are reported with
// t.Errorf.
func (h *Host) Freeze() {
	h.t.Helper()
	h.whileUp("Freeze", func() {
		if _, ok := h.stopTree(); !ok {
			h.t.Errorf("sshtest: %s: Freeze: sshd processes did not stop within %v", h.Alias, waitLimit)
		}
	})
}

// Thaw continues, with SIGCONT, the listener and every sshd process
// descended from it, undoing Freeze. Errors are reported with t.Errorf.
func (h *Host) Thaw() {
	h.t.Helper()
	h.whileUp("Thaw", func() {
		for _, pid := range sshdTree(h.Pid, testlab.Procs()) {
			h.signal(pid, syscall.SIGCONT)
		}
	})
}

// Processes returns the pids of the live processes, zombies excluded, whose
// environment holds WORKERPOOL_SSHTEST=<Marker>: whatever the sessions on
// this host started and left running. A process that changed its
// environment after it started is still found by its initial environment,
// which is what /proc/<pid>/environ shows.
func (h *Host) Processes() []int {
	want := MarkerVar + "=" + h.Marker
	self := os.Getpid()
	var pids []int
	for pid, p := range testlab.Procs() {
		if pid != self && p.Live() && testlab.HasEnv(pid, want) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// whileUp runs f with h.mu held, unless the listener has exited: then it
// reports, as an error of the test, that op cannot be done.
func (h *Host) whileUp(op string, f func()) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone() {
		h.t.Errorf("sshtest: %s: %s: sshd has exited", h.Alias, op)
		return
	}
	f()
}

// gone reports whether the listener has exited. Once it has, h.Pid may
// belong to another process and must not be used.
func (h *Host) gone() bool {
	select {
	case <-h.exited:
		return true
	default:
		return false
	}
}

// stopTree sends SIGSTOP to the listener and its sshd descendants until
// every one of them is stopped and a fresh look at the process table finds
// no new one. It returns the pids stopped, and false if that did not happen
// within waitLimit.
func (h *Host) stopTree() ([]int, bool) {
	stopped := map[int]bool{}
	stopNew := func() bool {
		fresh := false
		for _, pid := range sshdTree(h.Pid, testlab.Procs()) {
			if !stopped[pid] {
				stopped[pid] = true
				h.signal(pid, syscall.SIGSTOP)
				fresh = true
			}
		}
		return fresh
	}
	stopNew()
	deadline := time.Now().Add(waitLimit)
	ok := false
	for {
		// A process found after all known ones have stopped was forked
		// before they stopped, and nothing can fork after: the tree is
		// complete when that look finds nothing new.
		if allStopped(stopped) && !stopNew() {
			ok = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(pollEvery)
	}
	pids := make([]int, 0, len(stopped))
	for pid := range stopped {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids, ok
}

// killTree stops the listener and its sshd descendants, then kills them
// with SIGKILL. The caller holds h.mu and has checked that the listener
// has not exited.
func (h *Host) killTree() {
	pids, ok := h.stopTree()
	if !ok {
		h.t.Errorf("sshtest: %s: sshd processes did not stop within %v; killing those found", h.Alias, waitLimit)
	}
	for _, pid := range pids {
		h.signal(pid, syscall.SIGKILL)
	}
}

// signal sends sig to pid. The listener is signalled through its
// os.Process, which cannot reach another process after it has been reaped.
// A process that no longer exists is not an error.
func (h *Host) signal(pid int, sig syscall.Signal) {
	var err error
	if pid == h.Pid {
		err = h.cmd.Process.Signal(sig)
		if errors.Is(err, os.ErrProcessDone) {
			err = nil
		}
	} else {
		err = syscall.Kill(pid, sig)
		if errors.Is(err, syscall.ESRCH) {
			err = nil
		}
	}
	if err != nil {
		h.t.Errorf("sshtest: %s: signal %v to pid %d: %v", h.Alias, sig, pid, err)
	}
}

// cleanup kills whatever is left of the host: its sshd processes and the
// processes its sessions left running.
func (h *Host) cleanup() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return
	}
	if !h.gone() {
		h.killTree()
		// SIGKILL ends stopped processes too; the SIGCONT only spares
		// anyone reading the process table a stopped leftover.
		h.signal(h.Pid, syscall.SIGCONT)
		select {
		case <-h.exited:
		case <-time.After(waitLimit):
			h.t.Errorf("sshtest: %s: listener pid %d still running %v after SIGKILL", h.Alias, h.Pid, waitLimit)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for {
		pids := h.Processes()
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Errorf("sshtest: %s: session processes %v still running %v after SIGKILL", h.Alias, pids, waitLimit)
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(pollEvery)
	}
}

func (h *Host) readLog() string {
	b, err := os.ReadFile(h.log)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return string(b)
}

// sshdTree returns root followed by every process named sshd descended
// from it through processes named sshd.
func sshdTree(root int, procs map[int]testlab.Proc) []int {
	children := map[int][]int{}
	for pid, p := range procs {
		if p.Comm == "sshd" {
			children[p.PPid] = append(children[p.PPid], pid)
		}
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// allStopped reports whether every pid is stopped, a zombie, or gone.
func allStopped(pids map[int]bool) bool {
	for pid := range pids {
		p, ok := testlab.Stat(pid)
		if !ok {
			continue
		}
		switch p.State {
		case 'T', 't', 'Z', 'X':
		default:
			return false
		}
	}
	return true
}

// findSSHD returns the absolute path of sshd, or "" if it is not installed.
// sshd must be run by absolute path to re-execute itself per connection.
func findSSHD() string {
	if fi, err := os.Stat("/usr/sbin/sshd"); err == nil && !fi.IsDir() {
		return "/usr/sbin/sshd"
	}
	p, err := exec.LookPath("sshd")
	if err != nil {
		return ""
	}
	p, err = filepath.Abs(p)
	if err != nil {
		return ""
	}
	return p
}

// checkEnv rejects what cannot be written into a SetEnv directive.
func checkEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "= \t\r\n\"'\\#") {
			return fmt.Errorf("env key %q: not usable as a variable name", k)
		}
		if k == MarkerVar {
			return fmt.Errorf("env key %s is reserved", k)
		}
		if strings.ContainsAny(v, "\"\\\r\n\x00") {
			return fmt.Errorf("env value %s=%q: values must not contain '\"', '\\\\' or line breaks", k, v)
		}
	}
	return nil
}

// setEnvArgs returns the arguments of the SetEnv directive: the marker
// first, then env in key order, each quoted. sshd honours only the first
// SetEnv line, so everything goes on one.
func setEnvArgs(marker string, env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{fmt.Sprintf("%q", MarkerVar+"="+marker)}
	for _, k := range keys {
		args = append(args, `"`+k+"="+env[k]+`"`)
	}
	return strings.Join(args, " ")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return hex.EncodeToString(b)
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return string(b)
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
}
