// Command crmsim serves emulators of every CRM syncd supports on loopback
// ports, seeded with generated sample contacts, and prints a syncd config
// pointing at them. Use it to try mappings before touching a production
// CRM:
//
//	go run ./cmd/crmsim -people 500 -config sim.toml
//	syncd -config sim.toml --run-once --dry-run
//
// The emulators speak each CRM's real wire format (authentication,
// paging, envelopes, errors and quirks included) and keep their contacts
// in memory until crmsim stops.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/syncd/syncd/internal/crmsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("crmsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	people := fs.Int("people", 200, "number of sample people to spread over the CRMs")
	seed := fs.Uint64("seed", 1, "seed of the generated sample")
	host := fs.String("host", "127.0.0.1", "address to listen on (keep it on loopback)")
	basePort := fs.Int("port", 0, "first of four consecutive ports (opencrm, co3, clientbook, clientapi); 0 picks free ports")
	configOut := fs.String("config", "", "write a syncd config for the emulators to this file")
	state := fs.String("state", "crmsim-state.db", "state database path to put in the written config")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := crmsim.Options{People: *people, Seed: *seed, Host: *host}
	if *basePort > 0 {
		opts.Ports = [4]int{*basePort, *basePort + 1, *basePort + 2, *basePort + 3}
	}
	sim, err := crmsim.Start(opts)
	if err != nil {
		fmt.Fprintf(stderr, "crmsim: %v\n", err)
		return 1
	}
	defer sim.Close()
	cfg, err := sim.Config(crmsim.ConfigOptions{State: *state})
	if err != nil {
		fmt.Fprintf(stderr, "crmsim: %v\n", err)
		return 1
	}
	c := sim.Creds
	fmt.Fprintf(stdout, "crmsim: %d sample people; emulators on loopback:\n", *people)
	names := make([]string, 0, len(sim.URLs))
	for n := range sim.URLs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "  %-10s %s\n", n, sim.URLs[n])
	}
	fmt.Fprintf(stdout, "credentials (sample values the emulators accept):\n")
	fmt.Fprintf(stdout, "  opencrm    key=%s passkey=%s\n", c.OpenCRMKey, c.OpenCRMPasskey)
	fmt.Fprintf(stdout, "  co3        api_key=%s username=%s password=%s\n", c.CO3APIKey, c.CO3Username, c.CO3Password)
	fmt.Fprintf(stdout, "  clientbook app_id=%s app_key=%s token=%s secret=%s\n", c.CBAppID, c.CBAppKey, c.CBToken, c.CBSecret)
	fmt.Fprintf(stdout, "  clientapi  apikey=%s\n", c.ClientAPIKey)
	if *configOut != "" {
		if err := os.WriteFile(*configOut, []byte(cfg), 0o600); err != nil {
			fmt.Fprintf(stderr, "crmsim: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "syncd config written to %s: syncd -config %s --run-once\n", *configOut, *configOut)
	}
	fmt.Fprintln(stdout, "press Ctrl-C to stop")
	<-ctx.Done()
	return 0
}
