package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/fleetmq/fleetmq/cmd/fleetmq-bench/internal/loadgen"
)

// runReport prints a Markdown table comparing --json summaries (one JSON
// object per line, from files or stdin) by case name and label: absolute
// figures per broker and each one's ratio to the baseline broker. When a
// case ran several times against one broker, the median is shown.
func runReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleetmq-bench report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	baseline := fs.String("baseline", "mosquitto", "label the ratios are relative to")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("report: %w", err)}
	}
	var sums []loadgen.Summary
	read := func(r io.Reader, name string) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for line := 1; sc.Scan(); line++ {
			b := strings.TrimSpace(sc.Text())
			if b == "" || !strings.HasPrefix(b, "{") {
				continue
			}
			var s loadgen.Summary
			if err := json.Unmarshal([]byte(b), &s); err != nil {
				return fmt.Errorf("report: %s:%d: %w", name, line, err)
			}
			sums = append(sums, s)
		}
		return sc.Err()
	}
	if fs.NArg() == 0 {
		if err := read(os.Stdin, "stdin"); err != nil {
			return err
		}
	}
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		err = read(f, name)
		f.Close()
		if err != nil {
			return err
		}
	}
	if len(sums) == 0 {
		return errors.New("report: no summaries")
	}
	writeReport(stdout, sums, *baseline)
	return nil
}

// metric is one row of the report: a figure taken from a summary.
type metric struct {
	name   string
	get    func(*loadgen.Summary) (float64, bool)
	format string
}

func msgs(f func(*loadgen.Messages) float64) func(*loadgen.Summary) (float64, bool) {
	return func(s *loadgen.Summary) (float64, bool) {
		if s.Messages == nil {
			return 0, false
		}
		return f(s.Messages), true
	}
}

func lat(f func(*loadgen.Latency) float64) func(*loadgen.Summary) (float64, bool) {
	return func(s *loadgen.Summary) (float64, bool) {
		if s.Latency == nil {
			return 0, false
		}
		return f(s.Latency), true
	}
}

var (
	mOut     = metric{name: "msgs/s out", get: msgs(func(m *loadgen.Messages) float64 { return m.OutPerSec }), format: "%.0f"}
	mIn      = metric{name: "msgs/s in", get: msgs(func(m *loadgen.Messages) float64 { return m.InPerSec }), format: "%.0f"}
	mLost    = metric{name: "lost %", get: func(s *loadgen.Summary) (float64, bool) { return lostPct(s) }, format: "%.2f"}
	mP50     = metric{name: "p50 ms", get: lat(func(l *loadgen.Latency) float64 { return l.P50 }), format: "%.2f"}
	mP99     = metric{name: "p99 ms", get: lat(func(l *loadgen.Latency) float64 { return l.P99 }), format: "%.2f"}
	mMax     = metric{name: "max ms", get: lat(func(l *loadgen.Latency) float64 { return l.Max }), format: "%.1f"}
	mConnSec = metric{name: "conns/s", get: func(s *loadgen.Summary) (float64, bool) { return s.Connections.PerSec, true }, format: "%.0f"}
	mConnP99 = metric{name: "connect p99 ms", get: func(s *loadgen.Summary) (float64, bool) { return s.Connections.P99ms, true }, format: "%.2f"}
	mHeld    = metric{name: "connections held", get: func(s *loadgen.Summary) (float64, bool) { return float64(s.Connections.Held), true }, format: "%.0f"}
	mPerConn = metric{name: "RSS bytes/conn", get: func(s *loadgen.Summary) (float64, bool) {
		if s.Broker == nil || s.Broker.BytesPerConn == 0 {
			return 0, false
		}
		return s.Broker.BytesPerConn, true
	}, format: "%.0f"}
	mRSS = metric{name: "RSS MB after", get: func(s *loadgen.Summary) (float64, bool) {
		if s.Broker == nil {
			return 0, false
		}
		return float64(s.Broker.RSSAfterKB) / 1024, true
	}, format: "%.1f"}
	mCPU = metric{name: "broker CPU %", get: func(s *loadgen.Summary) (float64, bool) {
		if s.Broker == nil {
			return 0, false
		}
		return s.Broker.CPUPercent, true
	}, format: "%.0f"}
	mTool   = metric{name: "load tool CPU %", get: func(s *loadgen.Summary) (float64, bool) { return s.ToolCPUPercent, true }, format: "%.0f"}
	mErrors = metric{name: "errors", get: func(s *loadgen.Summary) (float64, bool) { return float64(s.Errors), true }, format: "%.0f"}
)

func lostPct(s *loadgen.Summary) (float64, bool) {
	if s.Messages == nil || s.Messages.LostRatio == nil {
		return 0, false
	}
	return 100 * *s.Messages.LostRatio, true
}

// metricsFor picks the rows that matter for a kind of run.
func metricsFor(s *loadgen.Summary) []metric {
	switch {
	case s.Storm:
		return []metric{mConnSec, mConnP99, mErrors}
	case s.Scenario == loadgen.ScenarioConn:
		return []metric{mHeld, mPerConn, mRSS, mConnSec, mErrors}
	case s.Rate > 0:
		return []metric{mOut, mP50, mP99, mMax, mCPU, mTool, mLost, mErrors}
	}
	return []metric{mOut, mIn, mP50, mP99, mCPU, mTool, mLost, mErrors}
}

// writeReport renders the table.
func writeReport(w io.Writer, sums []loadgen.Summary, baseline string) {
	var cases, labels []string
	byKey := map[[2]string][]*loadgen.Summary{}
	for i := range sums {
		s := &sums[i]
		name := s.Name
		if name == "" {
			name = s.Scenario
		}
		label := s.Label
		if label == "" {
			label = s.Addr
		}
		if !slices.Contains(cases, name) {
			cases = append(cases, name)
		}
		if !slices.Contains(labels, label) {
			labels = append(labels, label)
		}
		k := [2]string{name, label}
		byKey[k] = append(byKey[k], s)
	}
	// The baseline first, then the others in order of appearance.
	if i := slices.Index(labels, baseline); i > 0 {
		labels = append([]string{baseline}, slices.Delete(labels, i, i+1)...)
	}
	hasBase := slices.Contains(labels, baseline)
	var others []string
	for _, l := range labels {
		if l != baseline {
			others = append(others, l)
		}
	}

	fmt.Fprintf(w, "| case | metric |")
	for _, l := range labels {
		fmt.Fprintf(w, " %s |", l)
	}
	if hasBase {
		for _, l := range others {
			fmt.Fprintf(w, " %s / %s |", l, baseline)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---|---|")
	for range labels {
		fmt.Fprint(w, "---:|")
	}
	if hasBase {
		for range others {
			fmt.Fprint(w, "---:|")
		}
	}
	fmt.Fprintln(w)

	for _, c := range cases {
		var first *loadgen.Summary
		for _, l := range labels {
			if ss := byKey[[2]string{c, l}]; len(ss) > 0 {
				first = ss[0]
				break
			}
		}
		for _, m := range metricsFor(first) {
			vals := make(map[string]float64)
			for _, l := range labels {
				var vs []float64
				for _, s := range byKey[[2]string{c, l}] {
					if v, ok := m.get(s); ok {
						vs = append(vs, v)
					}
				}
				if len(vs) > 0 {
					vals[l] = median(vs)
				}
			}
			if len(vals) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s |", c, m.name)
			for _, l := range labels {
				if v, ok := vals[l]; ok {
					fmt.Fprintf(w, " "+m.format+" |", v)
				} else {
					fmt.Fprint(w, " – |")
				}
			}
			if hasBase {
				for _, l := range others {
					b, okb := vals[baseline]
					v, ok := vals[l]
					if !ok || !okb || b == 0 || m.name == "errors" {
						fmt.Fprint(w, " – |")
						continue
					}
					fmt.Fprintf(w, " %.2f× |", v/b)
				}
			}
			fmt.Fprintln(w)
		}
	}
}

// median of a non-empty slice (sorted in place).
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
