//go:build linux

package slurmtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerpool/workerpool/internal/testlab"
)

// MarkerVar is the name of the environment variable that every daemon of
// a cluster carries: munged, slurmctld and each slurmd. Its value is the
// cluster's Marker. slurmd does not pass it on to slurmstepd, which a
// cluster's cleanup finds by its mount namespace instead.
const MarkerVar = "WORKERPOOL_SLURMTEST"

// CPUsPerNode is the number of CPUs of every node of a cluster.
const CPUsPerNode = 4

const (
	// waitLimit bounds every wait: a daemon starting, the nodes
	// becoming idle, a node changing state, processes exiting.
	waitLimit = 20 * time.Second
	// clientLimit bounds one run of a Slurm client.
	clientLimit = 20 * time.Second
	// pollEvery is the interval between two checks while waiting.
	pollEvery = 50 * time.Millisecond
	// startAttempts is how many sets of ports Start tries before giving
	// up, when a daemon cannot bind its port.
	startAttempts = 4
	// maxDirLen bounds the length of Cluster.Dir: slurmstepd listens on
	// a Unix socket in the node's spool directory, and a socket's path
	// holds at most 107 bytes.
	maxDirLen = 60
)

// Cluster is a running Slurm cluster: one controller and its nodes.
type Cluster struct {
	// Dir is the temporary directory that holds the munge key, the
	// configuration, the controller's state, the nodes' spool
	// directories and, in Dir/log, the logs: slurmctld.log and
	// slurmd-nN.log, which the daemons write, and what each daemon
	// wrote on its standard output and error, <daemon>.out, the only
	// log of munged. Its path is short and holds no white space.
	Dir string
	// Conf is the path of slurm.conf. The clients find it through
	// SLURM_CONF, which Env sets.
	Conf string
	// Marker is a value unique to this cluster. Every daemon has
	// WORKERPOOL_SLURMTEST=<Marker> in its environment.
	Marker string

	nodes  []string
	bins   map[string]string // absolute paths of the programs Start needs
	munged *daemon
	ctld   *daemon
	slurmd []*daemon
	// namespaces holds open the mount namespace of every Slurm daemon
	// started, so that none of them can end and its inode number be
	// given to another namespace while the cluster's processes are
	// looked for by it. They are closed when the cluster has stopped.
	namespaces []heldNS
}

// programs are what Start needs, with the Debian package of each.
var programs = []struct{ name, pkg string }{
	{"munged", "munge"},
	{"slurmctld", "slurmctld"},
	{"slurmd", "slurmd"},
	{"sinfo", "slurm-client"},
	{"salloc", "slurm-client"},
	{"srun", "slurm-client"},
	{"sbatch", "slurm-client"},
	{"scontrol", "slurm-client"},
	{"scancel", "slurm-client"},
	{"sh", "dash"},
	{"mount", "mount"},
	{"readlink", "coreutils"},
}

// Start starts a cluster of nodes nodes, named "n1" to "nN", each with
// CPUsPerNode CPUs, in one partition "lab", and returns once sinfo shows
// every node idle. A daemon that cannot bind its port makes Start try
// again with other ports, a few times. If a daemon exits for another
// reason, or the nodes are not all idle within 20 seconds, Start calls
// t.Fatal with the logs.
//
// Start calls t.Skip when the test does not run as root, or when one of
// the programs the package needs is not installed (see the package
// documentation).
//
// At t.Cleanup, every process of the cluster is killed with SIGKILL: the
// slurmd daemons first, then slurmctld, then whatever is left in their
// mount namespaces (slurmstepd, the tasks of steps and batch jobs), each
// by its pid; munged last, with SIGTERM. The cleanup waits, for up to 20
// seconds, until each has exited, and reports with t.Errorf any that has
// not. SIGKILL spares the wait of an orderly shutdown: slurmctld takes
// seconds to give up on nodes already gone, and the state it would save is
// removed with Dir. Should the test binary die before its cleanups run (a
// -timeout panic), the daemons die with it, through a parent-death signal,
// but a slurmstepd and its tasks may be left.
func Start(t testing.TB, nodes int) *Cluster {
	t.Helper()
	if nodes < 1 {
		t.Fatalf("slurmtest: Start: %d nodes, want at least 1", nodes)
	}
	bins := map[string]string{}
	for _, p := range programs {
		path := lookProgram(p.name)
		if path == "" {
			t.Skipf("slurmtest: %s not found: install %s (Debian: apt-get install munge slurmctld slurmd slurm-client)", p.name, p.pkg)
		}
		bins[p.name] = path
	}
	if os.Geteuid() != 0 {
		t.Skip("slurmtest: the Slurm daemons must run as root, in mount namespaces of their own: run the test as root")
	}

	// Short, for the sockets in it, and of characters slurm.conf takes as they are.
	dir := testlab.TempDir(t, "slurmtest", maxDirLen)
	c := &Cluster{
		Dir:    dir,
		Conf:   filepath.Join(dir, "slurm.conf"),
		Marker: fmt.Sprintf("slurmtest-%d-%s", os.Getpid(), randomHex(t, 6)),
		bins:   bins,
	}
	for i := 1; i <= nodes; i++ {
		c.nodes = append(c.nodes, fmt.Sprintf("n%d", i))
	}
	// Registered before any daemon starts, so that a t.Fatal below still
	// stops whatever was started.
	t.Cleanup(func() { c.stop(t) })

	if err := os.Mkdir(filepath.Join(dir, "log"), 0o755); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	c.makeStateDirs(t)
	c.startMunge(t)
	writeFile(t, filepath.Join(dir, "cgroup.conf"), cgroupConf)
	c.startSlurm(t)
	return c
}

// Nodes returns the names of the nodes: "n1", "n2", ...
func (c *Cluster) Nodes() []string {
	return append([]string(nil), c.nodes...)
}

// Env returns the environment a Slurm client needs to reach the cluster,
// "SLURM_CONF=<Conf>", to append to os.Environ(). A client also reads
// other SLURM_* variables, such as SLURM_JOB_ID, so the environment it is
// appended to should hold none; Command and Run remove them.
func (c *Cluster) Env() []string {
	return []string{"SLURM_CONF=" + c.Conf}
}

// startMunge starts munged with a new key and waits until its socket
// accepts connections.
func (c *Cluster) startMunge(t testing.TB) {
	t.Helper()
	key := make([]byte, 128)
	if _, err := rand.Read(key); err != nil {
		t.Fatalf("slurmtest: munge key: %v", err)
	}
	keyFile := filepath.Join(c.Dir, "munge.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	sock := c.mungeSocket()
	d, err := c.startDaemon("munged", false, c.bins["munged"],
		"--foreground", "--force",
		"--key-file="+keyFile,
		"--socket="+sock,
		"--pid-file="+filepath.Join(c.Dir, "munged.pid"),
		"--seed-file="+filepath.Join(c.Dir, "munged.seed"))
	if err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	c.munged = d
	if err := d.waitDial("unix", sock); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
}

func (c *Cluster) mungeSocket() string {
	return filepath.Join(c.Dir, "munge.sock")
}

// errPortInUse marks a daemon that exited because its port was taken.
var errPortInUse = errors.New("port in use")

// startSlurm starts slurmctld and the slurmd daemons and waits until every
// node is idle. When a daemon cannot bind its port, it stops them all and
// tries again with other ports, up to startAttempts times.
func (c *Cluster) startSlurm(t testing.TB) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports, err := pickPorts(1 + len(c.nodes))
		if err != nil {
			t.Fatalf("slurmtest: free ports: %v", err)
		}
		writeFile(t, c.Conf, c.slurmConf(ports[0], ports[1:]))
		err = c.bootSlurm(ports[0])
		if err == nil {
			return
		}
		c.stopSlurm(t)
		if !errors.Is(err, errPortInUse) || attempt == startAttempts {
			t.Fatalf("slurmtest: %v", err)
		}
		t.Logf("slurmtest: attempt %d: %v; trying other ports", attempt, firstLine(err.Error()))
		c.makeStateDirs(t)
	}
}

// makeStateDirs makes, empty, the controller's state directory and the
// spool directory of each node.
func (c *Cluster) makeStateDirs(t testing.TB) {
	t.Helper()
	dirs := []string{filepath.Join(c.Dir, "state")}
	for _, n := range c.nodes {
		dirs = append(dirs, filepath.Join(c.Dir, "spool", n))
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			t.Fatalf("slurmtest: %v", err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("slurmtest: %v", err)
		}
	}
}

// bootSlurm starts slurmctld, waits until it accepts connections on
// ctldPort, starts one slurmd per node and waits until every node is idle.
// The error holds the log of the daemon at fault. (The connection that
// finds slurmctld ready sends nothing, which slurmctld logs as an error,
// "Zero Bytes were transmitted or received".)
func (c *Cluster) bootSlurm(ctldPort int) error {
	ctld, err := c.startDaemon("slurmctld", true, c.bins["slurmctld"], "-D", "-i", "-f", c.Conf)
	if err != nil {
		return err
	}
	c.ctld = ctld
	if err := ctld.waitDial("tcp", fmt.Sprintf("127.0.0.1:%d", ctldPort)); err != nil {
		return err
	}
	for _, n := range c.nodes {
		d, err := c.startDaemon("slurmd-"+n, true, c.bins["slurmd"], "-D", "-N", n, "-f", c.Conf)
		if err != nil {
			return err
		}
		c.slurmd = append(c.slurmd, d)
	}
	return c.waitIdle()
}

// waitIdle polls sinfo until every node is idle, a daemon exits, or
// waitLimit passes.
func (c *Cluster) waitIdle() error {
	deadline := time.Now().Add(waitLimit)
	var states map[string]string
	var err error
	for {
		for _, d := range append([]*daemon{c.ctld}, c.slurmd...) {
			if d.gone() {
				return d.exitError()
			}
		}
		states, err = c.nodeStates()
		if err == nil && c.allIdle(states) {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(pollEvery)
	}
	var logs strings.Builder
	for _, d := range append([]*daemon{c.ctld}, c.slurmd...) {
		logs.WriteString(d.tail())
	}
	if err != nil {
		return fmt.Errorf("nodes not idle within %v: sinfo: %v\n%s", waitLimit, err, logs.String())
	}
	return fmt.Errorf("nodes not idle within %v: %v\n%s", waitLimit, states, logs.String())
}

func (c *Cluster) allIdle(states map[string]string) bool {
	for _, n := range c.nodes {
		if states[n] != "idle" {
			return false
		}
	}
	return true
}

// slurmConf returns slurm.conf for a controller on ctldPort and one node
// per port of nodePorts, all on 127.0.0.1.
//
// CommunicationParameters=NoInAddrAny makes slurmd, srun and slurmstepd
// listen on the address the host name resolves to (or for slurmd, its
// NodeAddr) rather than on every address; slurmctld listens on every
// address all the same, and Slurm 22.05 has no setting to change that.
// SlurmdParameters=config_overrides makes a node's CPUs those of the
// configuration, whatever the machine has. ReturnToService=1 lets a node
// that was down for not answering come back when it registers, and keeps
// one set down (Down) down until Resume. The plugins need neither cgroups
// nor an accounting database.
func (c *Cluster) slurmConf(ctldPort int, nodePorts []int) string {
	d := c.Dir
	var b strings.Builder
	fmt.Fprintf(&b, `ClusterName=lab
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=%d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=%s
CredType=cred/munge
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool/%%n
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd-%%n.pid
SlurmctldLogFile=%s/log/slurmctld.log
SlurmdLogFile=%s/log/slurmd-%%n.log
MailProg=/bin/true
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
CommunicationParameters=NoInAddrAny
ReturnToService=1
SlurmdTimeout=10
InactiveLimit=0
KillWait=5
`, ctldPort, c.mungeSocket(), d, d, d, d, d, d)
	for i, n := range c.nodes {
		fmt.Fprintf(&b, "NodeName=%s NodeHostname=localhost NodeAddr=127.0.0.1 Port=%d CPUs=%d State=UNKNOWN\n",
			n, nodePorts[i], CPUsPerNode)
	}
	b.WriteString("PartitionName=lab Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n")
	return b.String()
}

// cgroupConf is read by slurmd even though no plugin of the configuration
// uses cgroups. The cgroup/v1 plugin is content with the empty directories
// of the tmpfs each daemon sees over /sys/fs/cgroup.
const cgroupConf = "CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n"

// stop kills every process of the cluster: the Slurm daemons and what is
// left in their namespaces, then munged. It runs at t.Cleanup.
func (c *Cluster) stop(t testing.TB) {
	c.stopSlurm(t)
	if c.munged != nil {
		c.munged.terminate(t)
	}
	if pids := c.Processes(); len(pids) > 0 {
		t.Errorf("slurmtest: processes %v of the cluster still running after cleanup", pids)
	}
	for _, ns := range c.namespaces {
		ns.f.Close()
	}
	c.namespaces = nil
}

// stopSlurm kills the slurmd daemons, then slurmctld, then every process
// left in their mount namespaces, and forgets the daemons. munged is
// spared.
func (c *Cluster) stopSlurm(t testing.TB) {
	for _, d := range c.slurmd {
		d.kill(t)
	}
	if c.ctld != nil {
		c.ctld.kill(t)
	}
	c.sweep(t)
	c.ctld, c.slurmd = nil, nil
}

// lookProgram returns the absolute path of the program name, found in
// PATH or else in the sbin directories, which the PATH of a test may
// lack; or "" if it is not installed.
func lookProgram(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		if p, err = filepath.Abs(p); err == nil {
			return p
		}
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// pickPorts is freePorts, but for a test that gives Start a port in use.
var pickPorts = freePorts

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago. All n listeners are open at once, so the ports differ.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
