// Package reliability holds syncd's reliability suite: crash trials that
// kill -9 the real syncd binary at random moments of a large first sync
// between emulated CRMs, and fault storms in which the emulators answer
// with rate limits, server errors, latency and expired sessions. Both
// check the sync's promises afterwards: no duplicate contacts, no lost
// edits, and a converged state (one more run writes nothing).
//
// The package has no code of its own outside its tests. See crash_test.go
// for how to run the full-size version.
package reliability
