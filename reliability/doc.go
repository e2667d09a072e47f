// Package reliability holds syncd's reliability suite: crash trials that
// kill -9 the real syncd binary at random moments of a large first sync
// between emulated CRMs, and fault storms in which the emulators answer
// with rate limits, server errors, latency and expired sessions. Both
// check the sync's promises afterwards: no duplicate contacts, no lost
// edits, and a converged state (one more run writes nothing).
//
// A full disk is tested too: a first sync whose state database is capped
// (SQLite's max_page_count) fills it before and while recording its first
// pushes, must stop with an error naming the database, leave it intact,
// and converge once there is room again.
//
// The package has no code of its own outside its tests. See crash_test.go
// for how to run the full-size version.
//
// Fuzzing is the other half of the suite: .ci/fuzz runs every fuzz target
// of the module (found with go test -list '^Fuzz', package by package) for
// FUZZTIME each, default 30s, one after the other:
//
//	bash .ci/fuzz                        every target, 30s each
//	FUZZTIME=5m bash .ci/fuzz            longer
//	bash .ci/fuzz ./internal/config      the targets of some packages
//
// It stops at the first failure, whose input go test writes under that
// package's testdata/fuzz/<Target>/ (where plain go test then runs it as
// a seed), and ends with the executions each target ran. The targets
// cover every connector's reply decoding (JSON and XML), the vCard and
// field mappings, the redactor and the config loader with the real
// connector types; their seed corpora run as ordinary tests in CI.
package reliability
