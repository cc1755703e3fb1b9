// Package sshtest starts real OpenSSH sshd instances on 127.0.0.1 for tests.
//
// Start runs one sshd per Spec, each listening on its own port, and writes
// an ssh_config in which every instance has a Host alias ("h1", "h2", ...).
// A test reaches a host by running "ssh -F <config> <alias> -- command".
// Keys, configurations and logs live in a temporary directory, and every
// process started is killed when the test ends.
//
// The package works on Linux only: it finds the processes of an instance
// through /proc. On other systems it is empty.
package sshtest
