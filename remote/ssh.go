package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kballard/go-shellquote"
)

// transport reaches hosts: the seam between the pool and the way to a
// host. command returns the local command that runs the shell command
// line remote on host dest, with its standard input, output and error
// joined to those of the returned command. OpenSSH is the one transport;
// another (srun, kubectl exec -i) would be one more implementation.
type transport interface {
	command(ctx context.Context, dest, remote string) *exec.Cmd
	// close releases what the transport holds, such as shared connections.
	close()
}

// openSSH reaches hosts through the system's ssh client, so that its
// configuration, known hosts, agent, ProxyJump and certificates all apply.
type openSSH struct {
	words []string // the ssh command, split into words
	// controlDir holds the control sockets through which the commands run
	// on a host share one connection; empty where ssh cannot share them.
	controlDir string

	mu    sync.Mutex
	dests map[string]bool // hosts reached, whose shared connection close ends
}

// The ssh options the pool adds after the user's own (the first value ssh
// obtains for an option wins, so the user's take precedence): no terminal,
// never a prompt, and a host that stops answering noticed after about
// aliveInterval × aliveCountMax.
const (
	connectTimeout = 10
	aliveInterval  = 5
	aliveCountMax  = 3
	// controlPersist is how long a shared connection outlives its last
	// use: it ends sooner at close, and this bounds it should the pool
	// die first.
	controlPersist = 30
)

func newOpenSSH(command string) (*openSSH, error) {
	if command == "" {
		command = "ssh"
	}
	words, err := shellquote.Split(command)
	if err != nil || len(words) == 0 {
		return nil, fmt.Errorf("--ssh %q: not a command: %v", command, err)
	}
	s := &openSSH{words: words, dests: map[string]bool{}}
	if runtime.GOOS != "windows" { // Windows' OpenSSH cannot share connections
		// A short path: a socket's path has room for about 100 bytes.
		if s.controlDir, err = os.MkdirTemp("", "wp-ssh-"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *openSSH) options() []string {
	opts := []string{"-T", "-o", "BatchMode=yes",
		"-o", fmt.Sprint("ConnectTimeout=", connectTimeout),
		"-o", fmt.Sprint("ServerAliveInterval=", aliveInterval),
		"-o", fmt.Sprint("ServerAliveCountMax=", aliveCountMax)}
	if s.controlDir != "" {
		opts = append(opts, "-o", "ControlMaster=auto",
			"-o", "ControlPath="+filepath.Join(s.controlDir, "%C"),
			"-o", fmt.Sprint("ControlPersist=", controlPersist))
	}
	return opts
}

func (s *openSSH) command(ctx context.Context, dest, remote string) *exec.Cmd {
	s.mu.Lock()
	s.dests[dest] = true
	s.mu.Unlock()
	args := slices.Concat(s.words[1:], s.options(), []string{"--", dest, remote})
	cmd := exec.CommandContext(ctx, s.words[0], args...)
	detach(cmd)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// close ends the shared connections and removes their sockets.
func (s *openSSH) close() {
	if s.controlDir == "" {
		return
	}
	s.mu.Lock()
	dests := s.dests
	s.dests = map[string]bool{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for dest := range dests {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			args := slices.Concat(s.words[1:], s.options(), []string{"-O", "exit", "--", dest})
			cmd := exec.CommandContext(ctx, s.words[0], args...)
			detach(cmd)
			_ = cmd.Run() // no shared connection left is fine
		})
	}
	wg.Wait()
	os.RemoveAll(s.controlDir)
}

// runRemote runs the shell command line remote on dest, with stdin as its
// input, and returns its output; an error says what ssh or the command
// said.
func runRemote(ctx context.Context, tr transport, dest, remote string, stdin io.Reader) ([]byte, error) {
	cmd := tr.command(ctx, dest, remote)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = stdin, &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, commandError(err, stderr.Bytes())
	}
	return out, nil
}

// commandError describes a failed remote command by its exit status and
// the last line it wrote to stderr. ssh itself exits 255.
func commandError(err error, stderr []byte) error {
	msg := lastLine(stderr)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 255:
		err = errors.New("ssh failed")
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		err = fmt.Errorf("exit status %d", exit.ExitCode())
	}
	if msg == "" {
		return err
	}
	return fmt.Errorf("%v: %s", err, msg)
}

// lastLine returns the last line of text that is not blank, shortened.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return line
}

// agentCommand is the shell command line that starts the agent at path
// (a shell word, already quoted) with the given flags.
func agentCommand(path string, flags []string) string {
	return "exec " + path + " --agent " + shellquote.Join(flags...)
}

// binary is this program, as --push copies it.
type binary struct {
	path string
	hash string // hex SHA-256 of its bytes, shortened
}

// self finds this program and its hash, once.
var self = sync.OnceValues(func() (binary, error) {
	path, err := os.Executable()
	if err != nil {
		return binary{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return binary{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return binary{}, err
	}
	return binary{path: path, hash: hex.EncodeToString(h.Sum(nil))[:16]}, nil
})

// pushPath is where --push keeps a binary on a host: under the remote
// home, named by its hash, so that hosts keep each version once and a
// changed binary is copied anew.
func pushPath(hash string) string { return `"$HOME"/.cache/workerpool/` + hash + "/workerpool" }

// push makes sure that dest has this very program, copying it there when
// it has not, and returns the shell word that runs it. It refuses a host
// whose system or architecture differs from this program's.
func push(ctx context.Context, tr transport, dest string) (string, error) {
	bin, err := self()
	if err != nil {
		return "", fmt.Errorf("--push: cannot read this program: %w", err)
	}
	path := pushPath(bin.hash)
	out, err := runRemote(ctx, tr, dest, "uname -sm && if test -x "+path+"; then echo present; fi", nil)
	if err != nil {
		return "", fmt.Errorf("--push: cannot probe the host: %w", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 2 {
		return "", fmt.Errorf("--push: uname -sm said %q", out)
	}
	if slices.Contains(fields[2:], "present") {
		return path, nil
	}
	goos, goarch := platformOf(fields[0], fields[1])
	if goos != runtime.GOOS || goarch != runtime.GOARCH {
		return "", fmt.Errorf("--push: the host runs %s %s, and this workerpool is built for %s/%s: install a workerpool built for it, and give its path with --remote-path",
			fields[0], fields[1], runtime.GOOS, runtime.GOARCH)
	}
	f, err := os.Open(bin.path)
	if err != nil {
		return "", fmt.Errorf("--push: %w", err)
	}
	defer f.Close()
	dir := `"$HOME"/.cache/workerpool/` + bin.hash
	copyIn := "set -e; umask 077; mkdir -p " + dir + "; t=" + dir + "/.workerpool.$$; cat > \"$t\"; chmod 700 \"$t\"; mv -f \"$t\" " + path
	if _, err := runRemote(ctx, tr, dest, copyIn, f); err != nil {
		return "", fmt.Errorf("--push: cannot copy workerpool to the host: %w", err)
	}
	return path, nil
}

// platformOf maps what uname -sm prints to Go's names of the system and
// architecture.
func platformOf(system, machine string) (goos, goarch string) {
	goos = strings.ToLower(system)
	switch machine {
	case "x86_64", "amd64":
		goarch = "amd64"
	case "aarch64", "arm64":
		goarch = "arm64"
	case "i386", "i686":
		goarch = "386"
	default:
		goarch = machine
	}
	return goos, goarch
}
