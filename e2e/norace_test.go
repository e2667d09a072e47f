//go:build !race

package e2e

// raceEnabled builds the binaries under test with -race.
const raceEnabled = false
