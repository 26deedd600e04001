package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/fleetmq/fleetmq/broker/authz"
)

// runPasswd prints the salted hash of a password read from stdin (first
// line, trailing newline removed), for an auth bundle's passwordHash.
func runPasswd(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleetmq-broker passwd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	iterations := fs.Int("iterations", authz.DefaultIterations, "PBKDF2-SHA512 iterations")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("passwd: %w", err)}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("passwd: read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return usageError{errors.New("passwd: empty password on stdin")}
	}
	hash, err := authz.HashPassword([]byte(pw), *iterations)
	if err != nil {
		return usageError{fmt.Errorf("passwd: %w", err)}
	}
	fmt.Fprintln(stdout, hash)
	return nil
}
