package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// startProfiles serves the benchmarks (cmd/syncbench): with cpuPath set
// (SYNCD_CPUPROFILE) the whole process is CPU-profiled into that file;
// with memPath set (SYNCD_MEMPROFILE) a heap profile is written there
// whenever the heap in use reaches a new high, checked every 250 ms, so
// the file shows what the peak was made of. Read either with
// `go tool pprof syncd FILE`. The returned func stops both.
func startProfiles(cpuPath, memPath string) (stop func()) {
	var stops []func()
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "syncd: SYNCD_CPUPROFILE: %v\n", err)
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if memPath != "" {
		done := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			var peak uint64
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak {
					peak = ms.HeapInuse
					if err := writeHeapProfile(memPath); err != nil {
						fmt.Fprintf(os.Stderr, "syncd: SYNCD_MEMPROFILE: %v\n", err)
						return
					}
				}
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
		stops = append(stops, func() { close(done); <-finished })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
