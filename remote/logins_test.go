package remote

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/job"
)

func TestParseLogins(t *testing.T) {
	got, err := parseLogins([]string{"8/build1, user@build2", ":", "2/:"}, 0)
	require.NoError(t, err)
	require.Equal(t, []Login{
		{text: "8/build1", dest: "build1", slots: 8},
		{text: "user@build2", dest: "user@build2"},
		{text: ":", dest: Here},
		{text: "2/:", dest: Here, slots: 2},
	}, got)

	for _, bad := range []string{"0/h", "8/", "-oProxyCommand=sh", "h 1", "99999999999999999999/h"} {
		_, err := parseLogins([]string{bad}, 0)
		require.Error(t, err, "%q", bad)
	}
}

// TestParseLoginsSlots: a login that names no count of slots gets the
// default, this machine's too; one that names its count keeps it.
func TestParseLoginsSlots(t *testing.T) {
	got, err := parseLogins([]string{"8/build1,build2", ":", "2/:"}, 3)
	require.NoError(t, err)
	require.Equal(t, []Login{
		{text: "8/build1", dest: "build1", slots: 8},
		{text: "build2", dest: "build2", slots: 3},
		{text: ":", dest: Here, slots: 3},
		{text: "2/:", dest: Here, slots: 2},
	}, got)
}

func TestReadLoginFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(path, []byte("# build hosts\n\n4/b1\nb2,b3\n"), 0o644))
	got, err := readLoginFile(path, 0)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, 4, got[0].slots)

	got, err = readLoginFile(path, 5)
	require.NoError(t, err)
	require.Equal(t, []int{4, 5, 5}, []int{got[0].slots, got[1].slots, got[2].slots})

	require.NoError(t, os.WriteFile(path, []byte("b1\n-x\n"), 0o644))
	_, err = readLoginFile(path, 0)
	require.ErrorContains(t, err, path)
}

// TestClusterDefaultSlots: the slots a source gives the logins that name
// none are the hosts' slots, this machine's among them.
func TestClusterDefaultSlots(t *testing.T) {
	hosts, err := StaticHosts([]string{"h1,2/h2", ":"}, 3)
	require.NoError(t, err)
	c, err := New(Options{Hosts: hosts, Transport: &unreachable{}})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, 3+2+3, c.Capacity())
	ctx := context.Background()
	var slots []dispatch.Slot
	for range 3 {
		slot, err := c.Acquire(ctx, job.Request{CPUs: 1})
		require.NoError(t, err)
		require.Equal(t, Here, slot.Host())
		slots = append(slots, slot)
	}
	full, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.Acquire(full, job.Request{CPUs: 1})
	require.ErrorIs(t, err, context.DeadlineExceeded, "this machine has 3 slots, and the hosts cannot be reached")
	for _, s := range slots {
		s.Release()
	}
}

// TestLoginFileDropsThisMachine: a login file that no longer names ":"
// stops this machine's slots; the slot still held is given back safely,
// and with no host left, Acquire says so at once.
func TestLoginFileDropsThisMachine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(path, []byte("1/:\n"), 0o644))
	hosts, err := LoginFile(path, 0)
	require.NoError(t, err)
	c, err := New(Options{Hosts: hosts, Transport: &unreachable{}, Here: nil})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	slot, err := c.Acquire(ctx, job.Request{CPUs: 1})
	require.NoError(t, err)
	require.Equal(t, Here, slot.Host())

	c.update(nil)
	slot.Release()
	_, err = c.Acquire(ctx, job.Request{CPUs: 1})
	require.ErrorContains(t, err, "no host left to run on")
}
