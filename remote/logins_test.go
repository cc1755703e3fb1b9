package remote

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLogins(t *testing.T) {
	got, err := parseLogins([]string{"8/build1, user@build2", ":", "2/:"})
	require.NoError(t, err)
	require.Equal(t, []Login{
		{text: "8/build1", dest: "build1", slots: 8},
		{text: "user@build2", dest: "user@build2"},
		{text: ":", dest: Here},
		{text: "2/:", dest: Here, slots: 2},
	}, got)

	for _, bad := range []string{"0/h", "8/", "-oProxyCommand=sh", "h 1", "99999999999999999999/h"} {
		_, err := parseLogins([]string{bad})
		require.Error(t, err, "%q", bad)
	}
}

func TestReadLoginFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(path, []byte("# build hosts\n\n4/b1\nb2,b3\n"), 0o644))
	got, err := readLoginFile(path)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, 4, got[0].slots)

	require.NoError(t, os.WriteFile(path, []byte("b1\n-x\n"), 0o644))
	_, err = readLoginFile(path)
	require.ErrorContains(t, err, path)
}

// TestLoginFileDropsThisMachine: a login file that no longer names ":"
// stops this machine's slots; the slot still held is given back safely,
// and with no host left, Acquire says so at once.
func TestLoginFileDropsThisMachine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(path, []byte("1/:\n"), 0o644))
	hosts, err := LoginFile(path)
	require.NoError(t, err)
	c, err := New(Options{Hosts: hosts, Transport: &unreachable{}, Here: nil})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	slot, err := c.Acquire(ctx)
	require.NoError(t, err)
	require.Equal(t, Here, slot.Host())

	c.update(nil)
	slot.Release()
	_, err = c.Acquire(ctx)
	require.ErrorContains(t, err, "no host left to run on")
}
