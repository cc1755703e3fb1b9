package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/kballard/go-shellquote"

	"github.com/workerpool/workerpool/internal/shorten"
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
	// control holds the control sockets through which the commands run
	// on a host share one connection; nil where they cannot share one.
	control *controlDir

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

// newOpenSSH returns the transport that runs command (ssh when empty),
// whose words are split as a shell would. Its connections share one per
// host where a control directory can be made (newControlDir).
func newOpenSSH(command string) (*openSSH, error) {
	if command == "" {
		command = "ssh"
	}
	words, err := shellquote.Split(command)
	if err != nil || len(words) == 0 {
		return nil, fmt.Errorf("--ssh %q: not a command: %v", command, err)
	}
	return &openSSH{words: words, control: newControlDir(), dests: map[string]bool{}}, nil
}

func (s *openSSH) options() []string {
	opts := []string{"-T", "-o", "BatchMode=yes",
		"-o", fmt.Sprint("ConnectTimeout=", connectTimeout),
		"-o", fmt.Sprint("ServerAliveInterval=", aliveInterval),
		"-o", fmt.Sprint("ServerAliveCountMax=", aliveCountMax)}
	if s.control != nil {
		opts = append(opts, "-o", "ControlMaster=auto",
			"-o", "ControlPath="+filepath.Join(s.control.path, "%C"),
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
	if s.control == nil {
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
	s.control.remove()
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
	msg := shorten.LastLine(stderr, 200)
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

// agentCommand is the shell command line that starts the agent at path
// (a shell word, already quoted) with the given flags.
func agentCommand(path string, flags []string) string {
	return "exec " + path + " --agent " + shellquote.Join(flags...)
}
