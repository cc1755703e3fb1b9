package remote

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// static is the source of the hosts in logins, as -S takes them.
func static(t *testing.T, logins ...string) HostSource {
	t.Helper()
	hosts, err := StaticHosts(logins, 0)
	require.NoError(t, err)
	return hosts
}

// texts returns the logins as they were given.
func texts(logins []Login) []string {
	var out []string
	for _, l := range logins {
		out = append(out, l.String())
	}
	return out
}

// withSlots returns the logins as they were given, each with its slots.
func withSlots(logins []Login) []string {
	var out []string
	for _, l := range logins {
		out = append(out, fmt.Sprintf("%s=%d", l, l.slots))
	}
	return out
}

func TestHostSources(t *testing.T) {
	_, err := StaticHosts([]string{"h1,0/h2"}, 0)
	require.EqualError(t, err, `login "0/h2": the slots before / must be a number from 1`)

	path := filepath.Join(t.TempDir(), "hosts")
	_, err = LoginFile(path, 0)
	require.EqualError(t, err, "--sshloginfile: open "+path+": no such file or directory")
	require.NoError(t, os.WriteFile(path, []byte("b1\n-x\n"), 0o644))
	_, err = LoginFile(path, 0)
	require.EqualError(t, err, "--sshloginfile: "+path+`: login "-x": a host cannot start with -`)

	require.NoError(t, os.WriteFile(path, []byte("f1\n4/f2\n"), 0o644))
	file, err := LoginFile(path, 0)
	require.NoError(t, err)
	joined := JoinHosts(static(t, "s1,s2"), file)
	require.Equal(t, []string{"s1", "s2", "f1", "4/f2"}, texts(joined.Logins()))

	// Logins that name no slots get the sources' default.
	file, err = LoginFile(path, 6)
	require.NoError(t, err)
	hosts, err := StaticHosts([]string{"s1,2/s2,:"}, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"s1=3", "2/s2=2", ":=3", "f1=6", "4/f2=4"}, withSlots(JoinHosts(hosts, file).Logins()))
}

// TestLoginFileWatch: a change of the login file is told within loginPoll,
// its logins that name no slots given the file's default; a file emptied,
// or that cannot be read, changes nothing until it names hosts again; and
// hosts joined to it stay.
func TestLoginFileWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hosts")
		write := func(text string) { require.NoError(t, os.WriteFile(path, []byte(text), 0o644)) }
		write("h1\n")
		file, err := LoginFile(path, 7)
		require.NoError(t, err)
		sets := make(chan []string, 10)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			JoinHosts(static(t, ":"), file).Watch(ctx, slog.New(slog.DiscardHandler), func(logins []Login) { sets <- withSlots(logins) })
		}()
		defer func() {
			cancel()
			<-done
		}()
		// toldInAPoll returns the set told within loginPoll, or nil. Each
		// change comes half-way between two polls.
		toldInAPoll := func() []string {
			time.Sleep(loginPoll)
			select {
			case set := <-sets:
				return set
			default:
				return nil
			}
		}

		time.Sleep(loginPoll / 2)
		write("h1\nh2\n")
		require.Equal(t, []string{":=0", "h1=7", "h2=7"}, toldInAPoll())
		require.Nil(t, toldInAPoll(), "an unchanged file is not told again")

		write("")
		require.Nil(t, toldInAPoll(), "an empty file changes nothing")
		require.NoError(t, os.Remove(path))
		require.Nil(t, toldInAPoll(), "a missing file changes nothing")
		write("4/h3\n")
		require.Equal(t, []string{":=0", "4/h3=4"}, toldInAPoll())

		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Watch has not returned after its context is done")
		}
	})
}
