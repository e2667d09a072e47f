// Package synctest wires the sync engine as cmd/syncd does — a config
// text, its state store, every connector built by the registry — for the
// tests that run connectors and emulators through the engine.
package synctest

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/registry"
	"github.com/syncd/syncd/internal/redact"
	"github.com/syncd/syncd/internal/state"
	engine "github.com/syncd/syncd/internal/sync"
)

// Load parses text as the config file dir/config.toml, with the connector
// types of types (the registry's when nil) and env: references resolving
// to nothing, and opens its state store, closed when the test ends.
func Load(t testing.TB, dir, text string, types config.Registry) (*config.Config, *state.Store) {
	t.Helper()
	if types == nil {
		types = registry.Types()
	}
	cfg, err := config.Parse([]byte(text), filepath.Join(dir, "config.toml"), types, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	st, err := state.Open(context.Background(), cfg.StatePath(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return cfg, st
}

// Connectors builds every connector of cfg, its secrets redacted.
func Connectors(t testing.TB, cfg *config.Config) []registry.Built {
	t.Helper()
	built, err := registry.Build(cfg, registry.BuildOptions{Redactor: redact.New(cfg.Secrets()...)})
	if err != nil {
		t.Fatal(err)
	}
	return built
}

// Engine makes an engine over st with the connectors built, as a new
// process would.
func Engine(t testing.TB, cfg *config.Config, st *state.Store, built []registry.Built) *engine.Engine {
	t.Helper()
	conns := map[string]connectors.Connector{}
	pacers := map[string]*connectors.Pacer{}
	for _, b := range built {
		conns[b.Name], pacers[b.Name] = b.Connector, b.Pacer
	}
	e, err := engine.New(engine.Options{Config: cfg, Store: st, Connectors: conns, Pacers: pacers})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Run runs e once, its plan output discarded, and fails the test on a
// run error.
func Run(t testing.TB, e *engine.Engine) *engine.Report {
	t.Helper()
	rep, err := e.Run(context.Background(), engine.RunOptions{Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// RunOK is Run that also fails the test when the run's exit code is not 0.
func RunOK(t testing.TB, e *engine.Engine) *engine.Report {
	t.Helper()
	rep := Run(t, e)
	if code := rep.ExitCode(); code != 0 {
		t.Fatalf("exit code %d: %+v", code, rep.Connectors)
	}
	return rep
}

// Writes is the number of write calls a run made to every connector.
func Writes(rep *engine.Report) (n int64) {
	for _, c := range rep.Connectors {
		n += c.Writes
	}
	return n
}
