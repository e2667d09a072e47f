// Command syncd keeps contact lists consistent, both ways, between CRMs.
//
//	syncd [-config FILE]                 run the daemon on the config's schedule
//	syncd [-config FILE] --run-once      run one sync cycle and exit
//	syncd demo                           a demo sync between emulated CRMs
//	syncd check-config [-config FILE]    validate a config
//	syncd status [-config FILE]          last runs, cursors, backlog, conflicts
//	syncd conflicts list|show|resolve    inspect and settle conflicts
//	syncd explain EMAIL|ENTITY           where each value of a contact came from
//	syncd version
//
// Exit codes: 0 success; 1 failure; 2 bad usage or config; 3 the run
// finished but left open conflicts, failed records or blocked deletions.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitAttention = 3
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "syncd: %s: finishing the work in hand, then stopping (send again to stop at once)\n", sig)
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "syncd: stopping at once")
		os.Exit(exitFailure)
	}()
	stopProfiles := startProfiles(os.Getenv("SYNCD_CPUPROFILE"), os.Getenv("SYNCD_MEMPROFILE"))
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	stopProfiles()
	os.Exit(code)
}

// Run runs the command line args and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	code := exitOK
	switch cmd {
	case "":
		code, err = runDaemon(ctx, args, stdout, stderr)
	case "demo":
		code, err = runDemo(ctx, args, stdout, stderr)
	case "check-config":
		code, err = runCheckConfig(args, stdout, stderr)
	case "status":
		code, err = runStatus(ctx, args, stdout)
	case "conflicts":
		code, err = runConflicts(ctx, args, stdout)
	case "explain":
		code, err = runExplain(ctx, args, stdout)
	case "version":
		fmt.Fprintf(stdout, "syncd %s\n", Version)
	case "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "syncd: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "syncd: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "syncd: %v\n", err)
		if code == exitOK {
			code = exitFailure
		}
	}
	return code
}

// usageError marks bad command lines and configs (exit 2).
type usageError struct{ error }

const usage = `usage:
  syncd [-config FILE] [--run-once] [--full] [--dry-run]
  syncd demo
  syncd check-config [-config FILE]
  syncd status [-config FILE]
  syncd conflicts list|show ID|resolve ID (--take CONNECTOR | --value V) [-config FILE]
  syncd explain [-config FILE] EMAIL|ENTITY-ID
  syncd version

-config defaults to ./config.toml, then /etc/syncd/config.toml.
Exit codes: 0 ok, 1 failure, 2 bad usage or config, 3 finished with open
conflicts, failed records or blocked deletions.
`
