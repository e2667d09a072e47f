package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/crmsim"
)

// TestCheckConfig: every mistake of a config is listed with its path in
// one go (exit 2); a valid config gets a one-line summary (exit 0).
func TestCheckConfig(t *testing.T) {
	t.Parallel()
	e := setup(t, crmsim.Options{People: 10}, crmsim.ConfigOptions{}, nil)
	r := syncd(t, "check-config", "-config", e.config)
	wantCode(t, r, 0, "check-config of a valid config")
	out := strings.TrimRight(r.Stdout, "\n")
	if strings.Contains(out, "\n") || !strings.HasPrefix(out, "config ok: 4 connectors") || !strings.Contains(out, e.state) {
		t.Errorf("want a one-line summary naming 4 connectors and the state path, got:\n%s", r.Stdout)
	}

	bad := configure(t, e.sim, crmsim.ConfigOptions{}, func(s string) string {
		s = strings.Replace(s, `schedule = "@every 1m"`, `schedule = "every minute"`, 1)
		s = strings.Replace(s, `level = "info"`, `level = "loud"`, 1)
		s = strings.Replace(s, `type = "clientbook"`, "type = \"clientbook\"\npage_size = -3", 1)
		return s
	})
	r = syncd(t, "check-config", "-config", bad.config)
	wantCode(t, r, 2, "check-config of a config with three mistakes")
	for _, want := range []string{
		bad.config,
		`schedule: not a cron spec`, `"every minute"`,
		`log.level: must be debug, info, warn or error (got "loud")`,
		`connectors[2].page_size: must be between 1 and 50000 (got -3)`,
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, r)
		}
	}
	// The run refuses the same config the same way, before touching the
	// state database.
	r = syncd(t, "-config", bad.config, "--run-once")
	wantCode(t, r, 2, "run-once with a bad config")
	if _, err := os.Stat(bad.state); err == nil {
		t.Errorf("a run with a bad config created the state database %s", bad.state)
	}
	if r := syncd(t, "check-config", "-config", filepath.Join(e.dir, "nope.toml")); r.Code != 2 || !strings.Contains(r.Stderr, "nope.toml") {
		t.Errorf("check-config of a missing file: want exit 2 naming the file, got\n%s", r)
	}
}

// TestDemo: `syncd demo` syncs the emulated CRMs, prints the per-CRM
// summary and proves the second sync writes nothing.
func TestDemo(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"demo"}, {"demo", "-xml", "-people", "60"}} {
		r := syncd(t, args...)
		wantCode(t, r, 0, strings.Join(args, " "))
		for _, want := range []string{
			"first sync", "CRM", "API writes", "opencrm", "co3", "clientbook", "hosting",
			"write calls in the second sync: 0", "third sync after two edits", "demo finished",
		} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, r.Stdout)
			}
		}
		if !regexp.MustCompile(`CO3 now has .*"Head of Sales"; OpenCRM now has first name ".*-Marie"`).MatchString(r.Stdout) {
			t.Errorf("%v: the edits did not travel:\n%s", args, r.Stdout)
		}
	}
}

// TestVersion: `syncd version` prints a version.
func TestVersion(t *testing.T) {
	t.Parallel()
	r := syncd(t, "version")
	wantCode(t, r, 0, "version")
	if !strings.HasPrefix(r.Stdout, "syncd ") {
		t.Errorf("version: %q", r.Stdout)
	}
}

// TestCrmsimBinary: the crmsim command serves the emulators, prints their
// URLs and writes a config that syncd syncs with, twice, the second time
// without a write; it stops cleanly on SIGTERM.
func TestCrmsimBinary(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	dir := t.TempDir()
	cfgPath, statePath := filepath.Join(dir, "sim.toml"), filepath.Join(dir, "state.db")
	cmd := exec.Command(binaries.crmsim, "-people", "80", "-config", cfgPath, "-state", statePath, "-port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	urls := map[string]string{}
	lines := make(chan string, 256) // never blocks the reader, so crmsim can always be reaped
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	urlLine := regexp.MustCompile(`^\s+(opencrm|co3|clientbook|clientapi)\s+(http://127\.0\.0\.1:\d+\S*)$`)
	timeout := time.After(30 * time.Second)
	ready := false
	for !ready {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("crmsim stopped before writing its config; stderr:\n%s", stderr.String())
			}
			if m := urlLine.FindStringSubmatch(line); m != nil {
				urls[m[1]] = m[2]
			}
			ready = strings.HasPrefix(line, "syncd config written to "+cfgPath)
		case <-timeout:
			t.Fatalf("crmsim did not get ready in 30 s; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	if len(urls) != 4 {
		t.Fatalf("crmsim printed %d base URLs, want 4: %v", len(urls), urls)
	}
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range urls {
		if !strings.Contains(string(text), `base_url = "`+u+`"`) {
			t.Errorf("the written config does not point %s at %s", name, u)
		}
	}
	if st, err := os.Stat(cfgPath); err == nil && st.Mode().Perm() != 0o600 {
		t.Errorf("crmsim wrote its config (with credentials) with mode %v, want 0600", st.Mode().Perm())
	}

	r := syncd(t, "-config", cfgPath, "--run-once")
	wantCode(t, r, 0, "first run against crmsim")
	rep := parseReport(t, r.Stdout)
	if rep["opencrm"]["pulled"] == 0 || rep["co3"]["pulled"] == 0 || rep.sum("created") == 0 {
		t.Errorf("first run against crmsim pulled or created nothing:\n%s", r.Stdout)
	}
	r = syncd(t, "-config", cfgPath, "--run-once")
	wantCode(t, r, 0, "second run against crmsim")
	if w := parseReport(t, r.Stdout).sum("writes"); w != 0 {
		t.Errorf("second run against crmsim made %d writes:\n%s", w, r.Stdout)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("crmsim after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("crmsim did not stop within 10 s of SIGTERM")
	}
}
