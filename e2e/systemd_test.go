package e2e

import (
	"bufio"
	"bytes"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/crmsim"
)

// TestSystemdUnitConfinesTheRealDaemon runs the daemon under strace, as
// systemd would start it (NOTIFY_SOCKET and WATCHDOG_USEC set), through a
// first cycle against the emulators and a SIGTERM, and checks what the
// unit in systemd/ allows against what it did:
//   - every system call is in SystemCallFilter= (the unit's allow-list
//     minus its deny-list, expanded by systemd-analyze);
//   - every socket is of a family in RestrictAddressFamilies=;
//   - systemd-analyze verify accepts the unit.
//
// It needs strace and systemd-analyze (.ci/deps.sh installs strace) and
// skips without them.
func TestSystemdUnitConfinesTheRealDaemon(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"strace", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot check the unit's confinement", tool)
		}
	}
	needBinaries(t)
	unit, err := os.ReadFile(filepath.Join("..", "systemd", "syncd.service"))
	if err != nil {
		t.Fatal(err)
	}
	allowed, families := unitConfinement(t, string(unit))

	// As under DynamicUser=, syncd runs as an unprivileged user: as root
	// it would do what root may (SQLite gives its WAL files the database
	// owner with fchown, which the unit denies and SQLite tolerates).
	var asUser []string
	var co crmsim.ConfigOptions
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Skipf("running as root and no user nobody to run syncd as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		dir, err = os.MkdirTemp("", "syncd-unit-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		asUser = []string{"-u", "nobody"}
		co.State = filepath.Join(dir, "state.db")
	}
	e := setup(t, crmsim.Options{People: 60}, co, hourly)
	if asUser != nil {
		conf := filepath.Join(dir, "config.toml")
		text, err := os.ReadFile(e.config)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(conf, text, 0o644); err != nil {
			t.Fatal(err)
		}
		e.config = conf
		bin, err := os.ReadFile(binaries.syncd)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "syncd"), bin, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := binaries.syncd
	if asUser != nil {
		exe = filepath.Join(dir, "syncd")
	}
	sock := filepath.Join(dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if asUser != nil {
		_ = os.Chmod(sock, 0o666) // syncd, as nobody, writes to it
	}
	trace := filepath.Join(dir, "strace.out")
	args := append(append([]string{"-f", "-qq", "-o", trace}, asUser...), exe, "-config", e.config)
	cmd := exec.Command("strace", args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var got []string
	_ = ln.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 4096)
	for !slices.Contains(got, "WATCHDOG=1") || !slices.Contains(got, "READY=1") {
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("notify socket: %v (got %q); stderr:\n%s", err, got, stderr.String())
		}
		got = append(got, strings.Split(string(buf[:n]), "\n")...)
	}
	firstRunOK := regexp.MustCompile(`(?m)^\s+run 1\s.*\sok\s`)
	deadline := time.Now().Add(60 * time.Second)
	for !firstRunOK.MatchString(syncd(t, "status", "-config", e.config).Stdout) {
		if time.Now().After(deadline) {
			t.Fatalf("no finished first run under strace; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	lock, err := os.ReadFile(e.state + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`pid (\d+)`).FindSubmatch(lock)
	if m == nil {
		t.Fatalf("no pid in the lock file: %q", lock)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("syncd under strace: %v; stderr:\n%s", err, stderr.String())
	}
	e.checkConverged()

	used, socks := traced(t, trace)
	var denied []string
	for _, sc := range used {
		if !allowed[sc] {
			denied = append(denied, sc)
		}
	}
	if len(denied) > 0 {
		t.Errorf("system calls the unit's SystemCallFilter= denies: %v", denied)
	}
	for _, f := range socks {
		if !slices.Contains(families, f) {
			t.Errorf("socket family %s is not in RestrictAddressFamilies=%v", f, families)
		}
	}
	t.Logf("%d distinct system calls, socket families %v, all allowed", len(used), socks)

	// The unit itself, pointed at the built binary.
	u := strings.Replace(string(unit), "ExecStart=/usr/local/bin/syncd", "ExecStart="+exe, 1)
	up := filepath.Join(dir, "syncd.service")
	if err := os.WriteFile(up, []byte(u), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", up).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// unitConfinement reads the unit's SystemCallFilter= lines (an allow-list,
// then "~" deny-lists) and RestrictAddressFamilies=, and returns the
// allowed system calls, expanded through systemd-analyze's groups.
func unitConfinement(t *testing.T, unit string) (map[string]bool, []string) {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "syscall-filter").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	var cur string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		s := strings.TrimSpace(line)
		switch {
		case s == "" || strings.HasPrefix(s, "#"):
		case !strings.HasPrefix(line, " "):
			cur = s
		case cur != "":
			groups[cur] = append(groups[cur], s)
		}
	}
	var expand func(name string, seen map[string]bool) []string
	expand = func(name string, seen map[string]bool) []string {
		if !strings.HasPrefix(name, "@") {
			return []string{name}
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		members, ok := groups[name]
		if !ok {
			t.Fatalf("systemd-analyze knows no group %s", name)
		}
		var all []string
		for _, m := range members {
			all = append(all, expand(m, seen)...)
		}
		return all
	}
	allowed := map[string]bool{}
	var families []string
	for _, line := range strings.Split(unit, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "SystemCallFilter":
			deny := strings.HasPrefix(v, "~")
			for _, name := range strings.Fields(strings.TrimPrefix(v, "~")) {
				for _, s := range expand(name, map[string]bool{}) {
					allowed[s] = !deny
				}
			}
		case "RestrictAddressFamilies":
			families = strings.Fields(v)
		}
	}
	if len(allowed) == 0 || len(families) == 0 {
		t.Fatal("the unit has no SystemCallFilter= or RestrictAddressFamilies=")
	}
	return allowed, families
}

// traced returns the distinct system calls in an strace -f log, and the
// families of the sockets opened.
func traced(t *testing.T, path string) (calls, families []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	call := regexp.MustCompile(`^\d+\s+([a-z0-9_]+)\(`)
	sock := regexp.MustCompile(`^\d+\s+socket\((AF_[A-Z0-9]+)`)
	seen, fam := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := call.FindStringSubmatch(line); m != nil {
			seen[m[1]] = true
		}
		if m := sock.FindStringSubmatch(line); m != nil {
			fam[m[1]] = true
		}
	}
	if len(seen) == 0 {
		t.Fatal("strace recorded no system call")
	}
	return slices.Sorted(maps.Keys(seen)), slices.Sorted(maps.Keys(fam))
}
