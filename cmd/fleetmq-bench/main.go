// Command fleetmq-bench generates MQTT load, in the manner of emqtt-bench,
// and reports throughput, latency, connection rate and errors.
//
//	fleetmq-bench conn   -c 10000 --connect-rate 2000 --sub 'idle/%i' --duration 30s
//	fleetmq-bench conn   -c 32 --storm --duration 10s -u bench -P secret
//	fleetmq-bench pub    -c 10 --topic 'bench/%i' --qos 1 --size 64 --rate 1000
//	fleetmq-bench sub    -c 10 --topic 'bench/%i' --qos 1
//	fleetmq-bench pairs  -c 10 --qos 1                   # publisher i → subscriber i
//	fleetmq-bench fanin  -c 1000 --rate 10               # 1,000 publishers → 1 subscriber
//	fleetmq-bench fanout -c 1000 --rate 100              # 1 publisher → 1,000 subscribers
//	fleetmq-bench report results.jsonl                   # table of --json summaries
//	fleetmq-bench broker --addr 127.0.0.1:1883 --cpuprofile cpu.out
//
// A progress line goes to stderr every second; the summary goes to stdout,
// as text or, with --json, as one JSON object. The exit code is 1 when
// more than --max-errors errors happened, 2 for bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fleetmq/fleetmq/cmd/fleetmq-bench/internal/loadgen"
)

// usageError is a bad flag: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string {
	return strings.ReplaceAll(strings.TrimSpace(e.err.Error()), "\n", "; ")
}

func (e usageError) Unwrap() error { return e.err }

// errTooManyErrors makes the exit code 1 after a run that completed.
var errTooManyErrors = errors.New("too many errors")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "fleetmq-bench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "fleetmq-bench:", err)
		os.Exit(1)
	}
}

const usage = `usage: fleetmq-bench COMMAND [flags]

commands:
  conn     open connections at a ramp rate and hold them (--storm: connect/disconnect in a loop)
  pub      publish from N clients
  sub      subscribe with N clients and measure deliveries
  pairs    N publishers, each to its own subscriber
  fanin    N publishers, one subscriber
  fanout   one publisher, N subscribers
  report   print a comparison table from --json summaries (JSON lines)
  broker   run an in-process fleetmq broker with CPU/heap profiling

fleetmq-bench COMMAND -h lists the flags of a command.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, usage)
		if len(args) == 0 {
			return usageError{errors.New("no command")}
		}
		return nil
	}
	switch args[0] {
	case "report":
		return runReport(args[1:], stdout)
	case "broker":
		return runBroker(ctx, args[1:], stderr)
	}
	opts, err := parseLoad(args[0], args[1:], stderr)
	if err != nil {
		return err
	}
	var progress io.Writer
	if !opts.quiet {
		progress = stderr
	}
	sum, err := loadgen.Run(ctx, opts.cfg, progress)
	if err != nil {
		return usageError{err}
	}
	if opts.json {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		sum.WriteText(stdout)
	}
	if sum.Errors > opts.maxErrors {
		return fmt.Errorf("%w: %d (threshold --max-errors %d)", errTooManyErrors, sum.Errors, opts.maxErrors)
	}
	return nil
}
