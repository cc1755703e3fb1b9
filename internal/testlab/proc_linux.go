package testlab

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Proc is a process as /proc/<pid>/stat shows it (see proc(5)).
type Proc struct {
	Pid, PPid, PGrp int
	Comm            string
	State           byte   // R, S, D, T, Z, X, ...
	Start           uint64 // start time, in clock ticks after boot
	// UTime and STime are the process's CPU time, CUTime and CSTime that
	// of its children it has waited for, in clock ticks.
	UTime, STime, CUTime, CSTime uint64
}

// Live reports whether the process runs still: it is neither a zombie nor
// dead.
func (p Proc) Live() bool { return p.State != 'Z' && p.State != 'X' }

// Pids returns the pid of every process /proc lists.
func Pids() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Procs returns every process, by pid; those that exit while it reads are
// left out.
func Procs() map[int]Proc {
	procs := map[int]Proc{}
	for _, pid := range Pids() {
		if p, ok := Stat(pid); ok {
			procs[pid] = p
		}
	}
	return procs
}

// Stat reads /proc/<pid>/stat: "pid (comm) state ppid pgrp ...". The comm
// may itself hold spaces and parentheses, so it ends at the last ')'. It
// reports false when the process is gone or the line cannot be read.
func Stat(pid int) (Proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Proc{}, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Proc{}, false
	}
	// f[0] is field 3 of proc(5), the state; field n is f[n-3].
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return Proc{}, false
	}
	bad := false
	num := func(field int) uint64 {
		n, err := strconv.ParseUint(f[field-3], 10, 64)
		bad = bad || err != nil
		return n
	}
	p := Proc{Pid: pid, Comm: string(b[open+1 : end]), State: f[0][0],
		PPid: int(num(4)), PGrp: int(num(5)), UTime: num(14), STime: num(15), CUTime: num(16), CSTime: num(17), Start: num(22)}
	if bad {
		return Proc{}, false
	}
	return p, true
}

// Environ returns the environment pid started with, "KEY=value" each; nil
// when it cannot be read.
func Environ(pid int) []string { return nulSeparated(pid, "environ") }

// Cmdline returns the words pid was started with; nil when they cannot be
// read, as for a zombie.
func Cmdline(pid int) []string { return nulSeparated(pid, "cmdline") }

// HasEnv reports whether pid's environment holds kv, "KEY=value".
func HasEnv(pid int, kv string) bool {
	for _, e := range Environ(pid) {
		if e == kv {
			return true
		}
	}
	return false
}

func nulSeparated(pid int, file string) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}
