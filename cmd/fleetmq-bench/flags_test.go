package main

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

func TestParseLoad(t *testing.T) {
	tests := []struct {
		name  string
		cmd   string
		args  []string
		check func(t *testing.T, o loadOptions)
	}{
		{"pairs defaults", "pairs", nil, func(t *testing.T, o loadOptions) {
			c := o.cfg
			want := [3]int{10, 10, 1}
			if got := [3]int{c.Publishers, c.Subscribers, c.Fanout}; got != want {
				t.Errorf("publishers, subscribers, fanout = %v, want %v", got, want)
			}
			if c.PubTopic.String() != "bench/pairs/%i" || c.SubFilter.String() != "bench/pairs/%i" {
				t.Errorf("topic %q filter %q, want bench/pairs/%%i twice", c.PubTopic, c.SubFilter)
			}
			if c.Protocol != packets.V311 || c.Addr != "127.0.0.1:1883" || c.Duration != 10*time.Second || c.Size != 64 {
				t.Errorf("protocol %d addr %q duration %v size %d: want 4, 127.0.0.1:1883, 10s, 64", c.Protocol, c.Addr, c.Duration, c.Size)
			}
		}},
		{"pairs qos 1 carries to subscribers", "pairs", []string{"--qos", "1", "-c", "3"}, func(t *testing.T, o loadOptions) {
			if o.cfg.QoS != 1 || o.cfg.SubQoS != 1 || o.cfg.Publishers != 3 {
				t.Errorf("qos %d sub-qos %d publishers %d, want 1, 1, 3", o.cfg.QoS, o.cfg.SubQoS, o.cfg.Publishers)
			}
		}},
		{"sub-qos overrides", "pairs", []string{"--qos", "1", "--sub-qos", "0"}, func(t *testing.T, o loadOptions) {
			if o.cfg.QoS != 1 || o.cfg.SubQoS != 0 {
				t.Errorf("qos %d sub-qos %d, want 1 and 0", o.cfg.QoS, o.cfg.SubQoS)
			}
		}},
		{"sub-addr settles a second by default", "pairs", []string{"--sub-addr", "127.0.0.2:1883"}, func(t *testing.T, o loadOptions) {
			if o.cfg.SubAddr != "127.0.0.2:1883" || o.cfg.Addr != "127.0.0.1:1883" || o.cfg.Settle != time.Second {
				t.Errorf("sub-addr %q addr %q settle %v, want 127.0.0.2:1883, 127.0.0.1:1883, 1s", o.cfg.SubAddr, o.cfg.Addr, o.cfg.Settle)
			}
		}},
		{"settle overrides", "fanin", []string{"--sub-addr", "127.0.0.2:1883", "--settle", "0"}, func(t *testing.T, o loadOptions) {
			if o.cfg.Settle != 0 {
				t.Errorf("settle %v, want 0", o.cfg.Settle)
			}
		}},
		{"fanout", "fanout", []string{"-c", "1000", "--rate", "5"}, func(t *testing.T, o loadOptions) {
			c := o.cfg
			if c.Publishers != 1 || c.Subscribers != 1000 || c.Fanout != 1000 || c.Rate != 5 {
				t.Errorf("publishers %d subscribers %d fanout %d rate %v, want 1, 1000, 1000, 5", c.Publishers, c.Subscribers, c.Fanout, c.Rate)
			}
		}},
		{"fanin", "fanin", []string{"-c", "50"}, func(t *testing.T, o loadOptions) {
			c := o.cfg
			if c.Publishers != 50 || c.Subscribers != 1 || c.SubFilter.String() != "bench/fanin/+" {
				t.Errorf("publishers %d subscribers %d filter %q, want 50, 1, bench/fanin/+", c.Publishers, c.Subscribers, c.SubFilter)
			}
		}},
		{"sub", "sub", []string{"--topic", "a/%i/#", "--qos", "2"}, func(t *testing.T, o loadOptions) {
			c := o.cfg
			if c.Subscribers != 10 || c.SubQoS != 2 || c.SubFilter.Expand(3, "") != "a/3/#" || c.Publishers != 0 {
				t.Errorf("subscribers %d qos %d filter %q publishers %d", c.Subscribers, c.SubQoS, c.SubFilter, c.Publishers)
			}
		}},
		{"conn with a subscription", "conn", []string{"-c", "5000", "--connect-rate", "2000", "--sub", "idle/%i", "--qos", "1"}, func(t *testing.T, o loadOptions) {
			c := o.cfg
			if c.Conns != 5000 || c.ConnectRate != 2000 || c.ConnFilter.String() != "idle/%i" || c.ConnQoS != 1 || c.Storm {
				t.Errorf("conns %d rate %v filter %q qos %d storm %v", c.Conns, c.ConnectRate, c.ConnFilter, c.ConnQoS, c.Storm)
			}
		}},
		{"storm with auth", "conn", []string{"--storm", "-u", "bench", "-P", "pw", "--duration", "2s"}, func(t *testing.T, o loadOptions) {
			c := o.cfg
			if !c.Storm || c.Username != "bench" || c.Password != "pw" {
				t.Errorf("storm %v username %q password %q", c.Storm, c.Username, c.Password)
			}
		}},
		{"common flags", "pub", []string{"--addr", "10.0.0.1:1884", "--protocol", "5", "--json", "--quiet", "--max-errors", "3",
			"--label", "mosquitto", "--name", "qos1", "--sources", "127.0.0.1-3", "--broker-pid", "42", "--keepalive", "30s"},
			func(t *testing.T, o loadOptions) {
				c := o.cfg
				if !o.json || !o.quiet || o.maxErrors != 3 || c.Progress != 0 {
					t.Errorf("json %v quiet %v max-errors %d progress %v", o.json, o.quiet, o.maxErrors, c.Progress)
				}
				if c.Addr != "10.0.0.1:1884" || c.Protocol != packets.V5 || c.Label != "mosquitto" || c.Name != "qos1" || c.BrokerPID != 42 || c.KeepAlive != 30*time.Second {
					t.Errorf("addr %q protocol %d label %q name %q pid %d keepalive %v", c.Addr, c.Protocol, c.Label, c.Name, c.BrokerPID, c.KeepAlive)
				}
				if len(c.Sources) != 3 || c.Sources[2].String() != "127.0.0.3" {
					t.Errorf("sources %v, want 127.0.0.1 to .3", c.Sources)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseLoad(tt.cmd, tt.args, io.Discard)
			if err != nil {
				t.Fatalf("parseLoad(%s %v): %v", tt.cmd, tt.args, err)
			}
			tt.check(t, o)
		})
	}
}

func TestParseLoadErrors(t *testing.T) {
	tests := []struct {
		cmd  string
		args []string
		want string
	}{
		{"nope", nil, `unknown command "nope"`},
		{"pub", []string{"--qos", "3"}, "--qos 3"},
		{"pub", []string{"--topic", "a/+"}, "not a valid topic name"},
		{"pub", []string{"--topic", "a/%z"}, "unknown verb"},
		{"pub", []string{"--size", "4"}, "size 4"},
		{"pub", []string{"-c", "0"}, "-c 0"},
		{"pub", []string{"--bogus"}, "flag provided but not defined"},
		{"pub", []string{"extra"}, `unexpected argument "extra"`},
		{"sub", []string{"--topic", "a/#/b"}, "not a valid filter"},
		{"conn", []string{"--storm", "--duration", "0"}, "storm needs a duration"},
		{"conn", []string{"--sources", "127.0.0.5-3"}, "end before start"},
		{"conn", []string{"--sources", "::1"}, "not an IPv4 address"},
		{"pairs", []string{"--protocol", "6"}, "protocol 6"},
		{"pairs", []string{"-P", "x"}, "password without username"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseLoad(tt.cmd, tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if ue := (usageError{}); !errors.As(err, &ue) {
				t.Errorf("error is %T, want usageError (exit code 2)", err)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"127.0.0.2", []string{"127.0.0.2"}},
		{"127.0.0.1-3", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
		{"127.0.0.1-127.0.0.2,127.0.1.9", []string{"127.0.0.1", "127.0.0.2", "127.0.1.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ips, err := parseSources(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseSources(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if _, err := parseSources("127.0.0.1-10.0.0.2"); err == nil {
		t.Error("range across /24s: no error")
	}
}
