package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"

	"github.com/workerpool/workerpool/internal/shorten"
)

// Transport is the way from the pool to its hosts: it runs a program on
// one of them. OpenSSH is one; another (srun, kubectl exec -i) is one
// more type that implements it, in a file of its own.
type Transport interface {
	// Command returns the command, not yet started, that runs the program
	// argv[0] (a path, or a name the host looks up in its PATH) on host
	// dest, with the arguments argv[1:]. Each word of argv reaches the
	// program as it is: a transport that goes through a shell quotes them.
	//
	// The returned command's standard input and output are the remote
	// program's: the caller sets Stdin, Stdout and Stderr, starts the
	// command and waits for it. Its standard error carries the program's
	// and the transport's own messages, and its exit status is the
	// program's, or the transport's when the transport failed (ssh exits
	// 255). Killing the command cuts the program off: its input ends.
	// When ctx is done the command is killed, as exec.CommandContext does.
	Command(ctx context.Context, dest string, argv []string) *exec.Cmd
	// Close releases what the transport holds, such as shared
	// connections. The Cluster it was given to calls it once, from
	// Cluster.Close after every command it made has ended, or from New when
	// New fails; Command is not called after.
	Close()
}

// runRemote runs argv on dest, with stdin as its input, and returns its
// output; an error says what the transport or the program said.
func runRemote(ctx context.Context, tr Transport, dest string, argv []string, stdin io.Reader) ([]byte, error) {
	cmd := tr.Command(ctx, dest, argv)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = stdin, &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, commandError(tr, err, stderr.Bytes())
	}
	return out, nil
}

// commandError describes a failed remote command by its exit status and
// the last line it wrote to stderr. A transport with an exit status of
// its own, such as ssh's 255, names it (exitMeaning).
func commandError(tr Transport, err error, stderr []byte) error {
	msg := shorten.LastLine(stderr, 200)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() >= 0 {
		err = fmt.Errorf("exit status %d", exit.ExitCode())
		if m, ok := tr.(exitMeaner); ok {
			if own := m.exitMeaning(exit.ExitCode()); own != nil {
				err = own
			}
		}
	}
	if msg == "" {
		return err
	}
	return fmt.Errorf("%v: %s", err, msg)
}

// What a Transport may do beyond Command and Close. A Cluster looks for
// each of these in the transport it is given.
type (
	// An exitMeaner tells the exit statuses of its own, the transport's
	// failures rather than the program's: ssh's 255.
	exitMeaner interface{ exitMeaning(code int) error }
	// A killer ends a command it made, started, better than SIGKILL does,
	// when the program on the host would outlive it: srun and its step.
	killer interface{ kill(cmd *exec.Cmd) }
	// An ender tells when no host can be reached any more, for good: a
	// Slurm allocation that has ended. Its error is then each host's.
	ender interface{ ended() error }
)
