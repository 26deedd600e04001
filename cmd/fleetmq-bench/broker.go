package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // the profiling endpoints of runBroker
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/fleetmq/fleetmq/broker"
)

// runBroker serves a fleetmq broker in this process, with the options
// fleetmq-broker uses (default limits, anonymous access), plus net/http/pprof
// and optional CPU and heap profiles written at exit. It exists so that a
// load run can be profiled without touching the broker's command.
func runBroker(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fleetmq-bench broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:1883", "MQTT listener address")
	pprofAddr := fs.String("pprof-addr", "", "serve net/http/pprof here (e.g. 127.0.0.1:6060)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile at exit to this file")
	mutexRate := fs.Int("mutex-fraction", 0, "runtime.SetMutexProfileFraction (0: off)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "usage: fleetmq-bench broker [flags]")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return usageError{fmt.Errorf("broker: %w", err)}
	}
	runtime.SetMutexProfileFraction(*mutexRate)
	srv, err := broker.New(broker.Options{
		AllowAnonymous: true,
		Logger:         slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("broker: listen: %w", err)
	}
	if *pprofAddr != "" {
		pln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("broker: listen for pprof: %w", err)
		}
		go func() { _ = (&http.Server{ReadHeaderTimeout: 10 * time.Second}).Serve(pln) }()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	fmt.Fprintf(stderr, "fleetmq-bench broker: serving MQTT on %s (pid %d)\n", ln.Addr(), os.Getpid())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, broker.ErrServerClosed) && ctx.Err() == nil {
			return err
		}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintln(stderr, "fleetmq-bench broker: shutdown:", err)
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return fmt.Errorf("broker: %w", err)
		}
	}
	return nil
}
