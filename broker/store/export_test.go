package store

// Crash stops b as a kill would at this instant (see crash).
func Crash(b *Bolt) { b.crash() }

// SpareReady reports whether a preallocated segment waits for the next
// rotation.
func SpareReady(b *Bolt) bool { return len(b.log.spares) == 1 }
