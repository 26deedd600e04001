//go:build race

package e2e_test

// raceEnabled: the suite (and with it the operator) runs under the race
// detector, which slows it down; the latency result says so.
const raceEnabled = true
