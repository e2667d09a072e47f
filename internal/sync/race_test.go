//go:build race

package engine

// raceEnabled scales tests down: the race detector slows the pure-Go
// SQLite driver by an order of magnitude.
const raceEnabled = true
