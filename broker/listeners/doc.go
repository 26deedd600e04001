// Package listeners adapts transports other than plain TCP to the broker:
// MQTT over TLS (with optional client certificates) and MQTT over
// WebSocket, plain or over TLS.
//
// A TLS holds the certificate, key and client CA pool in force and swaps
// them atomically when the files change (cert-manager rotating a mounted
// Secret); handshakes read the current ones, established connections are
// never touched. Listener wraps a net.Listener so that the broker's
// Server.Serve accepts TLS connections: Accept returns at once and the
// handshake runs, bounded by a timeout, on the connection's first read, in
// the broker's goroutine for that connection. WebSocket is an http.Handler
// (and a Serve loop) that upgrades requests for one path and hands each
// connection, as a byte-stream net.Conn, to Server.ServeConn.
//
// The broker keeps a reader goroutine for these wrapped connections; only
// plain *net.TCPConn connections are parked in its poller.
package listeners
