//go:build !linux

package broker

import "net"

// poller is Linux-only; elsewhere every connection keeps a reader goroutine.
type poller struct{}

func newPoller() *poller { return nil }

func fdOf(net.Conn) (int32, bool) { return 0, false }

func (p *poller) register(*client) bool { return false }

func (p *poller) arm(*client) bool { return false }

func (p *poller) forget(*client) {}

func (p *poller) close() {}
