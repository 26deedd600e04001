package testtools

import (
	"net"
	"testing"
)

// FreeAddr reserves a loopback port for a listener the test starts later
// (a cluster route, which must be known to every node before any starts).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
