package remote

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// static is the source of the hosts in logins, as -S takes them.
func static(t *testing.T, logins ...string) HostSource {
	t.Helper()
	hosts, err := StaticHosts(logins)
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

func TestHostSources(t *testing.T) {
	_, err := StaticHosts([]string{"h1,0/h2"})
	require.EqualError(t, err, `login "0/h2": the slots before / must be a number from 1`)

	path := filepath.Join(t.TempDir(), "hosts")
	_, err = LoginFile(path)
	require.EqualError(t, err, "--sshloginfile: open "+path+": no such file or directory")
	require.NoError(t, os.WriteFile(path, []byte("b1\n-x\n"), 0o644))
	_, err = LoginFile(path)
	require.EqualError(t, err, "--sshloginfile: "+path+`: login "-x": a host cannot start with -`)

	require.NoError(t, os.WriteFile(path, []byte("f1\n4/f2\n"), 0o644))
	file, err := LoginFile(path)
	require.NoError(t, err)
	joined := JoinHosts(static(t, "s1,s2"), file)
	require.Equal(t, []string{"s1", "s2", "f1", "4/f2"}, texts(joined.Logins()))
}
