package remote

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/kballard/go-shellquote"
)

// OpenSSH is the Transport through the system's ssh client, so that its
// configuration, known hosts, agent, ProxyJump and certificates all apply.
// The user's login shell on the host runs each program, as "exec"
// followed by the program's words, each quoted as a POSIX shell reads
// them (and csh and fish read such quotes alike).
type OpenSSH struct {
	words []string // the ssh command, split into words
	// control holds the control sockets through which the commands run
	// on a host share one connection; nil where they cannot share one.
	control *controlDir

	mu    sync.Mutex
	dests map[string]bool // hosts reached, whose shared connection Close ends
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
	// use: it ends sooner at Close, and this bounds it should the pool
	// die first.
	controlPersist = 30
)

// NewOpenSSH returns the transport that runs command (ssh when empty),
// whose words are split as a shell would. Its commands to one host share
// one connection where a control directory can be made (newControlDir);
// Close ends those connections and removes the directory. An error is a
// command that cannot be split into words.
func NewOpenSSH(command string) (*OpenSSH, error) {
	if command == "" {
		command = "ssh"
	}
	words, err := shellquote.Split(command)
	if err != nil || len(words) == 0 {
		return nil, fmt.Errorf("--ssh %q: not a command: %v", command, err)
	}
	return &OpenSSH{words: words, control: newControlDir(), dests: map[string]bool{}}, nil
}

func (s *OpenSSH) options() []string {
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

// Command returns the ssh command that runs argv on dest, in a process
// group of its own (so that a ^C reaches the pool and not ssh), and gives
// the pipes 5 s after ssh exits to be closed by what it left behind.
func (s *OpenSSH) Command(ctx context.Context, dest string, argv []string) *exec.Cmd {
	s.mu.Lock()
	s.dests[dest] = true
	s.mu.Unlock()
	line := "exec " + shellquote.Join(argv...)
	args := slices.Concat(s.words[1:], s.options(), []string{"--", dest, line})
	cmd := exec.CommandContext(ctx, s.words[0], args...)
	detach(cmd)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// exitMeaning: ssh exits 255 when it fails itself.
func (s *OpenSSH) exitMeaning(code int) error {
	if code == 255 {
		return errors.New("ssh failed")
	}
	return nil
}

// Close ends the shared connections and removes their sockets.
func (s *OpenSSH) Close() {
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
