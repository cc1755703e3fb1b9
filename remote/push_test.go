//go:build unix

package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// localShell is a Transport whose host is this machine: it runs each
// program here, in an environment of its own (HOME, PATH). The copy of
// --push (the program that reads this one) can be made to go through a
// filter first, which changes the bytes on the way, or to run with a
// limit on the size of the files it writes.
type localShell struct {
	env []string
	// filter is a shell command the copy's input goes through.
	filter string
	// fileLimit, when set, is the ulimit -f (in blocks of 512 bytes) the
	// copy runs with.
	fileLimit int
	runs      int // programs run
}

func (l *localShell) Command(ctx context.Context, _ string, argv []string) *exec.Cmd {
	l.runs++
	script := `exec "$@"`
	if slices.ContainsFunc(argv, func(word string) bool { return strings.Contains(word, "head -c") }) {
		if l.filter != "" {
			script = l.filter + ` | "$@"`
		}
		if l.fileLimit > 0 {
			// Ignored, SIGXFSZ becomes an error a write returns.
			script = fmt.Sprintf(`trap "" XFSZ; ulimit -f %d; %s`, l.fileLimit, script)
		}
	}
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", script, "sh"}, argv...)...)
	cmd.Env = l.env
	return cmd
}

func (l *localShell) Close() {}

// newLocalShell is a localShell with a new, empty HOME and the given PATH.
func newLocalShell(t *testing.T, path string) (*localShell, string) {
	home := t.TempDir()
	return &localShell{env: []string{"HOME=" + home, "PATH=" + path}}, home
}

// pushDir is where push keeps this program under home.
func pushDir(t *testing.T, home string) string {
	t.Helper()
	bin, err := self()
	require.NoError(t, err)
	return filepath.Join(home, ".cache/workerpool", bin.sum[:16])
}

// requireInstalled checks that home holds a checked copy of this program.
func requireInstalled(t *testing.T, home string) {
	t.Helper()
	bin, err := self()
	require.NoError(t, err)
	dir := pushDir(t, home)
	b, err := os.ReadFile(filepath.Join(dir, "workerpool"))
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	require.Equal(t, bin.sum, hex.EncodeToString(sum[:]), "the copy is this program")
	fi, err := os.Stat(filepath.Join(dir, "workerpool"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	stamp, err := os.ReadFile(filepath.Join(dir, "stamp"))
	require.NoError(t, err)
	require.Equal(t, bin.stamp()+"\n", string(stamp))
	requireNoTemporary(t, home)
}

// requireNoTemporary checks that no temporary file of the copy is left.
func requireNoTemporary(t *testing.T, home string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(pushDir(t, home), ".*"))
	require.NoError(t, err)
	require.Empty(t, left, "temporary files left")
}

// requireNothingLeft checks that a failed first copy left nothing.
func requireNothingLeft(t *testing.T, home string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(pushDir(t, home), "*"))
	require.NoError(t, err)
	require.Empty(t, left)
	requireNoTemporary(t, home)
}

// TestPushChecksTheCopy runs push's scripts here, with sh, as a host runs
// them: a copy is checked before it counts, and one that fails leaves
// nothing behind and says why.
func TestPushChecksTheCopy(t *testing.T) {
	bin, err := self()
	require.NoError(t, err)
	ctx := context.Background()
	path := os.Getenv("PATH")

	t.Run("copied once", func(t *testing.T) {
		sh, home := newLocalShell(t, path)
		got, err := push(ctx, sh, "h1", DefaultPushKeep)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(pushDir(t, home), "workerpool"), got)
		requireInstalled(t, home)
		require.Equal(t, 2, sh.runs, "a probe and a copy")
		sh.runs = 0
		_, err = push(ctx, sh, "h1", DefaultPushKeep)
		require.NoError(t, err)
		require.Equal(t, 1, sh.runs, "a checked copy is not copied again")
	})

	t.Run("cut short", func(t *testing.T) {
		sh, home := newLocalShell(t, path)
		sh.filter = "head -c 100000"
		_, err := push(ctx, sh, "h1", DefaultPushKeep)
		require.EqualError(t, err, fmt.Sprintf("--push: the copy on h1 is 100000 of %d bytes: the transfer ended early, and the partial copy was removed", bin.size))
		requireNothingLeft(t, home)
		sh.filter = ""
		_, err = push(ctx, sh, "h1", DefaultPushKeep)
		require.NoError(t, err)
		requireInstalled(t, home)
	})

	t.Run("damaged", func(t *testing.T) {
		sh, home := newLocalShell(t, path)
		sh.filter = "{ head -c 1000; head -c 1 >/dev/null; printf x; cat; }"
		_, err := push(ctx, sh, "h1", DefaultPushKeep)
		require.ErrorContains(t, err, "--push: the copy on h1 has sha256 ")
		require.ErrorContains(t, err, ", not "+bin.sum+": it was damaged on the way, and was removed")
		requireNothingLeft(t, home)
	})

	t.Run("cannot write", func(t *testing.T) {
		sh, home := newLocalShell(t, path)
		sh.fileLimit = 100
		_, err := push(ctx, sh, "h1", DefaultPushKeep)
		require.ErrorContains(t, err, "--push: cannot write the copy on h1: exit status 1: head: ")
		require.ErrorContains(t, err, "File too large")
		requireNothingLeft(t, home)
	})

	for _, tc := range []struct {
		name  string
		stamp bool
	}{{"a partial program", false}, {"a partial program with a stamp", true}} {
		t.Run(tc.name, func(t *testing.T) {
			sh, home := newLocalShell(t, path)
			dir := pushDir(t, home)
			require.NoError(t, os.MkdirAll(dir, 0o700))
			whole, err := os.ReadFile(bin.path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "workerpool"), whole[:100000], 0o700))
			if tc.stamp {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "stamp"), []byte(bin.stamp()+"\n"), 0o600))
			}
			_, err = push(ctx, sh, "h1", DefaultPushKeep)
			require.NoError(t, err)
			require.Equal(t, 2, sh.runs, "the partial program is copied again")
			requireInstalled(t, home)
		})
	}
}

// TestPushHashTools: the copy is checked with whichever tool the host has
// to take a SHA-256, or by its size alone where it has none.
func TestPushHashTools(t *testing.T) {
	bin, err := self()
	require.NoError(t, err)
	ctx := context.Background()
	base := []string{"sh", "uname", "mkdir", "head", "wc", "tr", "chmod", "mv", "rm", "cat", "printf"}
	for _, tool := range []string{"sha256sum", "shasum", "openssl", ""} {
		name := tool
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			tools := base
			if tool != "" {
				if _, err := exec.LookPath(tool); err != nil {
					t.Skipf("%s is not installed", tool)
				}
				tools = append(tools, tool)
			}
			path := toolDir(t, tools)
			sh, home := newLocalShell(t, path)
			_, err := push(ctx, sh, "h1", DefaultPushKeep)
			require.NoError(t, err)
			requireInstalled(t, home)
			if tool == "" {
				return // the size alone cannot tell a damaged copy
			}
			sh, home = newLocalShell(t, path)
			sh.filter = "{ head -c 1000; head -c 1 >/dev/null; printf x; cat; }"
			_, err = push(ctx, sh, "h1", DefaultPushKeep)
			require.ErrorContains(t, err, "--push: the copy on h1 has sha256 ")
			require.ErrorContains(t, err, ", not "+bin.sum)
			requireNothingLeft(t, home)
		})
	}
}

// toolDir makes a directory that holds the given programs, and nothing
// else, for a PATH.
func toolDir(t *testing.T, tools []string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		require.NoError(t, err)
		require.NoError(t, os.Symlink(p, filepath.Join(dir, tool)))
	}
	return dir
}

// TestCopyError: each way the copy fails is told apart.
func TestCopyError(t *testing.T) {
	bin := binary{sum: strings.Repeat("ab", 32), size: 17800000}
	other := strings.Repeat("cd", 32)
	exit1 := errors.New("exit status 1")
	for _, tc := range []struct {
		out  string
		err  error
		want string
	}{
		{"fail size 6912000\n", exit1,
			"--push: the copy on h1 is 6912000 of 17800000 bytes: the transfer ended early, and the partial copy was removed"},
		{"fail sha256 " + other + "  -\n", exit1,
			"--push: the copy on h1 has sha256 " + other + ", not " + bin.sum + ": it was damaged on the way, and was removed"},
		{"fail sha256 SHA2-256(stdin)= " + other + "\n", exit1,
			"--push: the copy on h1 has sha256 " + other + ", not " + bin.sum + ": it was damaged on the way, and was removed"},
		{"fail write\n", errors.New("exit status 1: head: error writing 'x': No space left on device"),
			"--push: the disk on h1 is full: no room for the copy (17800000 bytes): exit status 1: head: error writing 'x': No space left on device"},
		{"fail write\n", errors.New("exit status 1: head: error writing 'x': Disk quota exceeded"),
			"--push: the disk on h1 is full: no room for the copy (17800000 bytes): exit status 1: head: error writing 'x': Disk quota exceeded"},
		{"fail write\n", errors.New("exit status 1: mv: cannot move"),
			"--push: cannot write the copy on h1: exit status 1: mv: cannot move"},
		{"fail hash\n", exit1, "--push: cannot compute the sha256 of the copy on h1: exit status 1"},
		{"fail mkdir\n", errors.New("exit status 1: mkdir: Permission denied"),
			`--push: cannot make "$HOME"/.cache/workerpool/abababababababab on h1: exit status 1: mkdir: Permission denied`},
		{"", errors.New("ssh failed: Connection closed"), "--push: cannot copy workerpool to h1: ssh failed: Connection closed"},
	} {
		require.EqualError(t, copyError("h1", bin, []byte(tc.out), tc.err), tc.want)
	}
}
