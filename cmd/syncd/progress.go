package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	engine "github.com/syncd/syncd/internal/sync"
)

// newProgress returns a progress sink for --run-once: a live line per
// phase on a terminal, a line every few seconds otherwise (journald).
func newProgress(w io.Writer) func(engine.ProgressEvent) {
	tty := isTerminal(w)
	var mu sync.Mutex
	start := map[string]time.Time{}
	var lastPrint time.Time
	lastKey := ""
	return func(ev engine.ProgressEvent) {
		mu.Lock()
		defer mu.Unlock()
		key := ev.Connector + " " + ev.Phase
		now := time.Now()
		if _, ok := start[key]; !ok {
			start[key] = now
		}
		elapsed := now.Sub(start[key])
		rate := 0.0
		if elapsed > 0 {
			rate = float64(ev.Records) / elapsed.Seconds()
		}
		line := fmt.Sprintf("%-12s %-9s %7d records %5d pages %8.0f/s", ev.Connector, ev.Phase, ev.Records, ev.Pages, rate)
		if ev.Total > 0 {
			pct := 100 * float64(ev.Records) / float64(ev.Total)
			line += fmt.Sprintf("  %5.1f%% of %d", pct, ev.Total)
			if rate > 0 && ev.Records < ev.Total {
				eta := time.Duration(float64(ev.Total-ev.Records) / rate * float64(time.Second))
				line += "  ETA " + eta.Round(time.Second).String()
			}
		}
		if tty {
			if key != lastKey && lastKey != "" {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "\r\033[K%s", line)
			lastKey = key
			return
		}
		if now.Sub(lastPrint) >= 5*time.Second || key != lastKey {
			fmt.Fprintln(w, "progress: "+line)
			lastPrint, lastKey = now, key
		}
	}
}
