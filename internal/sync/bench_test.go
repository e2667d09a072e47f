package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/memory"
	"github.com/syncd/syncd/internal/state"
)

// BenchmarkFirstSync is the first sync of two CRMs of 100,000 contacts
// each, half of them shared, through memory connectors and the real
// SQLite store: 200,000 contacts pulled, 150,000 entities, 100,000
// creates pushed.
func BenchmarkFirstSync(b *testing.B) {
	const perSide = 100_000
	b.ReportAllocs()
	var peak atomic.Uint64
	var cpu time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		clock := &emulator.Clock{}
		clock.Set(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		cfg := &config.Config{Conflicts: config.Conflicts{Policy: "newest"}, Deletions: config.Deletions{MaxDeleteRatio: 0.05, MaxDeleteCount: 50}, Identity: config.Identity{DefaultRegion: "GB"}}
		conns := map[string]connectors.Connector{}
		for _, n := range []string{"a", "b"} {
			cfg.Connector = append(cfg.Connector, config.Connector{Name: n, Type: "memory", Direction: "both", Fields: testMappings[n]})
			c := memory.New(emulator.NewTable(clock), 5000)
			conns[n] = c
			for j := range perSide {
				k := j
				if n == "b" {
					// The first half of b are a's second half.
					k = j + perSide/2
				}
				c.Table.Insert(person(n, map[string]string{"given_name": fmt.Sprint("Given", k), "family_name": "Family", "email": fmt.Sprintf("person%d@example.com", k), "phone": fmt.Sprintf("+44 20 %04d %04d", k/10000, k%10000), "company": fmt.Sprint("Company ", k%300)}))
			}
		}
		st, err := state.Open(context.Background(), filepath.Join(b.TempDir(), "state.db"), state.Options{})
		if err != nil {
			b.Fatal(err)
		}
		e, err := New(Options{Config: cfg, Store: st, Connectors: conns, Logger: benchLogger()})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		done := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					runtime.ReadMemStats(&ms)
					if ms.HeapAlloc > peak.Load() {
						peak.Store(ms.HeapAlloc)
					}
				}
			}
		}()
		cpuBefore := cpuTime()
		b.StartTimer()
		rep, err := e.Run(context.Background(), RunOptions{})
		b.StopTimer()
		cpu += cpuTime() - cpuBefore
		close(done)
		if err != nil || rep.ExitCode() != 0 {
			b.Fatalf("run: %v %+v", err, rep)
		}
		if n := conns["a"].(*memory.Connector).Table.Len(); n != perSide*3/2 {
			b.Fatalf("a holds %d", n)
		}
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(2*perSide)*float64(b.N)/b.Elapsed().Seconds(), "contacts/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	// On a shared machine wall time depends on the neighbours; process CPU
	// time (all threads) does not.
	b.ReportMetric(float64(2*perSide)*float64(b.N)/cpu.Seconds(), "contacts/cpu-s")
}

func benchLogger() *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
