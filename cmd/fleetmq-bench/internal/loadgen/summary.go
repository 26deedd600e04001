package loadgen

import (
	"fmt"
	"io"
	"time"
)

// Summary is the result of one Run, written as JSON by --json.
type Summary struct {
	Scenario    string  `json:"scenario"`
	Name        string  `json:"name,omitempty"`
	Storm       bool    `json:"storm,omitempty"`
	Label       string  `json:"label,omitempty"`
	Addr        string  `json:"addr"`
	SubAddr     string  `json:"subAddr,omitempty"`
	Protocol    int     `json:"protocol"`
	QoS         byte    `json:"qos"`
	Size        int     `json:"size"`
	Rate        float64 `json:"rate_per_client"`
	Conns       int     `json:"conns,omitempty"`
	Publishers  int     `json:"publishers,omitempty"`
	Subscribers int     `json:"subscribers,omitempty"`

	// Seconds is the measured window: publishing, holding or storming.
	Seconds     float64     `json:"seconds"`
	Connections Connections `json:"connections"`
	Messages    *Messages   `json:"messages,omitempty"`
	Latency     *Latency    `json:"latency_ms,omitempty"`
	Broker      *BrokerProc `json:"broker,omitempty"`
	// ToolCPUPercent is this load generator's own CPU use over the run:
	// near 100 % per core it is the tool, not the broker, that limits.
	ToolCPUPercent float64  `json:"tool_cpu_percent"`
	Errors         int64    `json:"errors"`
	ErrorSample    []string `json:"error_samples,omitempty"`
}

// Connections describes connection setup.
type Connections struct {
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
	// Held is how many were still open at the end of a conn or sub hold.
	Held int `json:"held,omitempty"`
	// RampSeconds is the time to open all of them.
	RampSeconds float64 `json:"ramp_seconds"`
	// PerSec is successful connections per second over the ramp (storm:
	// connect/disconnect cycles per second over the window).
	PerSec float64 `json:"per_sec"`
	// Connect latency, dial to CONNACK.
	P50ms float64 `json:"connect_p50_ms"`
	P99ms float64 `json:"connect_p99_ms"`
	MaxMs float64 `json:"connect_max_ms"`
}

// Messages counts PUBLISH packets.
type Messages struct {
	// Sent, Acked and Received are counted within the window; the rates
	// divide them by it.
	Sent     uint64  `json:"sent"`
	Acked    uint64  `json:"acked,omitempty"`
	Received uint64  `json:"received"`
	InPerSec float64 `json:"in_per_sec"`
	// OutPerSec is deliveries per second (all subscribers together).
	OutPerSec float64 `json:"out_per_sec"`
	// SentTotal and ReceivedTotal include the drain after the window.
	SentTotal     uint64 `json:"sent_total"`
	AckedTotal    uint64 `json:"acked_total,omitempty"`
	ReceivedTotal uint64 `json:"received_total"`
	// Lost is the expected deliveries that never came (fan-out factor
	// known only), as a fraction.
	LostRatio *float64 `json:"lost_ratio,omitempty"`
}

// Latency is publish-to-delivery time from the timestamp in each payload
// (same host clock), in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// BrokerProc is the broker process as seen in /proc.
type BrokerProc struct {
	PID          int     `json:"pid"`
	RSSBeforeKB  int64   `json:"rss_before_kb"`
	RSSAfterKB   int64   `json:"rss_after_kb"`
	BytesPerConn float64 `json:"rss_bytes_per_conn,omitempty"`
	// CPUSeconds is the broker's user + system time over the whole run
	// (connect, window, drain); CPUPercent divides it by that wall time
	// (200 % is both cores of a 2-core machine).
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent,omitempty"`
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

func (r *runner) fill(s *Summary, m measured) {
	cfg := r.cfg
	s.Seconds = m.window.Seconds()
	cl := r.connLat.Snapshot()
	s.Connections = Connections{
		OK: r.connOK.Load(), Failed: r.connFailed.Load(), Held: m.heldConns,
		RampSeconds: m.ramp.Seconds(),
		P50ms:       msf(cl.Quantile(0.5)), P99ms: msf(cl.Quantile(0.99)), MaxMs: msf(time.Duration(cl.Max)),
	}
	switch {
	case cfg.Storm && m.window > 0:
		s.Connections.PerSec = float64(m.cycles) / m.window.Seconds()
	case m.ramp > 0:
		s.Connections.PerSec = float64(s.Connections.OK) / m.ramp.Seconds()
	}
	if cfg.Publishers > 0 || cfg.Subscribers > 0 {
		msg := &Messages{Sent: m.sent, Acked: m.acked, Received: m.received, SentTotal: m.sentAll, AckedTotal: m.ackedAll, ReceivedTotal: m.receivedAll}
		if w := m.window.Seconds(); w > 0 {
			msg.InPerSec = float64(m.sent) / w
			msg.OutPerSec = float64(m.received) / w
		}
		if cfg.Fanout > 0 && cfg.Subscribers > 0 && m.sentAll > 0 {
			want := float64(m.sentAll) * float64(cfg.Fanout)
			lost := max(0, (want-float64(m.receivedAll))/want)
			msg.LostRatio = &lost
		}
		s.Messages = msg
		lat := r.lat.Snapshot()
		if lat.Total > 0 {
			s.Latency = &Latency{
				Count: lat.Total,
				P50:   msf(lat.Quantile(0.5)), P95: msf(lat.Quantile(0.95)), P99: msf(lat.Quantile(0.99)),
				Max: msf(time.Duration(lat.Max)), Mean: msf(lat.Mean()),
			}
		}
	}
	s.Errors = r.errors.Load()
	r.mu.Lock()
	s.ErrorSample = append([]string(nil), r.errSamples...)
	r.mu.Unlock()
}

// WriteText writes the summary for a human.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s against %s", s.Scenario, s.Addr)
	if s.SubAddr != "" {
		fmt.Fprintf(w, " (subscribers on %s)", s.SubAddr)
	}
	if s.Label != "" {
		fmt.Fprintf(w, " (%s)", s.Label)
	}
	fmt.Fprintf(w, ": %.1fs measured\n", s.Seconds)
	c := s.Connections
	fmt.Fprintf(w, "  connections  %d ok, %d failed, %.0f/s; connect p50 %.2fms p99 %.2fms max %.2fms\n",
		c.OK, c.Failed, c.PerSec, c.P50ms, c.P99ms, c.MaxMs)
	if m := s.Messages; m != nil {
		fmt.Fprintf(w, "  messages     in %.0f/s, out %.0f/s (sent %d, acked %d, received %d; with drain %d / %d)\n",
			m.InPerSec, m.OutPerSec, m.Sent, m.Acked, m.Received, m.SentTotal, m.ReceivedTotal)
		if m.LostRatio != nil {
			fmt.Fprintf(w, "  lost         %.3f%%\n", 100**m.LostRatio)
		}
	}
	if l := s.Latency; l != nil {
		fmt.Fprintf(w, "  latency      p50 %.3fms p95 %.3fms p99 %.3fms max %.3fms mean %.3fms (%d samples)\n",
			l.P50, l.P95, l.P99, l.Max, l.Mean, l.Count)
	}
	if b := s.Broker; b != nil {
		fmt.Fprintf(w, "  broker       pid %d RSS %d → %d KB", b.PID, b.RSSBeforeKB, b.RSSAfterKB)
		if b.BytesPerConn != 0 {
			fmt.Fprintf(w, " (%.0f B/connection)", b.BytesPerConn)
		}
		fmt.Fprintf(w, ", CPU %.1fs (%.0f%%)\n", b.CPUSeconds, b.CPUPercent)
	}
	fmt.Fprintf(w, "  load tool    CPU %.0f%%\n", s.ToolCPUPercent)
	fmt.Fprintf(w, "  errors       %d\n", s.Errors)
	for _, e := range s.ErrorSample {
		fmt.Fprintf(w, "    %s\n", e)
	}
}
