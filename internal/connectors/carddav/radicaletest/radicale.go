// Package radicaletest runs a real Radicale CardDAV server on loopback for
// tests, with a fault-injecting, call-counting proxy in front of it and a
// contract.Emulator over one address book.
package radicaletest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/vcardmap"
)

// Server is a running Radicale.
type Server struct {
	// URL is Radicale's own address (no proxy, no faults).
	URL      string
	User     string
	Password string
}

// command finds Radicale: the radicale program, or python3 -m radicale.
func command() ([]string, bool) {
	if p, err := exec.LookPath("radicale"); err == nil {
		return []string{p}, true
	}
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if err := exec.Command(py, "-c", "import radicale").Run(); err == nil {
			return []string{py, "-m", "radicale"}, true
		}
	}
	return nil, false
}

// Start starts Radicale with plain htpasswd authentication and storage in
// a temporary folder, and stops it when the test ends. Without Radicale
// the test is skipped with a message saying how to install it.
func Start(t testing.TB) *Server {
	t.Helper()
	cmdline, ok := command()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Skip("radicale is not installed and .ci/deps.sh could not install it; CardDAV integration tests skipped")
		}
		t.Skip("radicale is not installed; install it to run the CardDAV integration tests: apt-get install radicale (or pip install radicale)")
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatalf("radicaletest: %v", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), User: "syncd", Password: "s3cret-Passw0rd"}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte(s.User+":"+s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`[server]
hosts = 127.0.0.1:%d
[auth]
type = htpasswd
htpasswd_filename = %s
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = %s
[web]
type = none
[logging]
level = warning
`, port, users, filepath.Join(dir, "collections"))
	cfgPath := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedWriter{w: &bytes.Buffer{}}
	cmd := exec.Command(cmdline[0], append(cmdline[1:], "--config", cfgPath)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("radicaletest: start %v: %v", cmdline, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("radicaletest: radicale exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("radicaletest: radicale did not answer within 15s: %s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// request sends an authenticated request straight to Radicale.
func (s *Server) request(method, path string, header http.Header, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.SetBasicAuth(s.User, s.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// NewAddressBook creates an address book with a fresh name under the
// user's home and returns its path ("/syncd/book-…/").
func (s *Server) NewAddressBook(t testing.TB) string {
	t.Helper()
	path := fmt.Sprintf("/%s/book-%s/", s.User, vcardmap.NewUID()[:8])
	body := `<?xml version="1.0" encoding="utf-8"?>
<d:mkcol xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>
<d:resourcetype><d:collection/><card:addressbook/></d:resourcetype><d:displayname>test</d:displayname>
</d:prop></d:set></d:mkcol>`
	resp, b, err := s.request("MKCOL", path, http.Header{"Content-Type": {"application/xml"}}, []byte(body))
	if err != nil {
		t.Fatalf("radicaletest: MKCOL: %v", err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("radicaletest: MKCOL %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	return path
}

// Proxy is a loopback proxy to Radicale that counts calls by HTTP method
// (PROPFIND, REPORT, GET, PUT, DELETE) and injects faults by that name.
type Proxy struct {
	emulator.Hooks
	URL string
}

// NewProxy starts a proxy to s, closed when the test ends.
func (s *Server) NewProxy(t testing.TB) *Proxy {
	t.Helper()
	target, _ := url.Parse(s.URL)
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.Enter(w, r.Method) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

// Book is one address book on a Radicale, seen through a proxy. It
// implements contract.Emulator: ids are resource names ("<uid>.vcf").
type Book struct {
	Server  *Server
	Proxy   *Proxy
	Path    string
	Version string
}

// NewBook creates an address book and a proxy in front of the server.
func (s *Server) NewBook(t testing.TB) *Book {
	return &Book{Server: s, Proxy: s.NewProxy(t), Path: s.NewAddressBook(t), Version: "3.0"}
}

// URL is the address book's URL through the proxy.
func (b *Book) URL() string { return b.Proxy.URL + b.Path }

// Put stores a raw card under name, as another client would.
func (b *Book) Put(name string, data []byte) error {
	resp, body, err := b.Server.request(http.MethodPut, b.Path+name, http.Header{"Content-Type": {"text/vcard; charset=utf-8"}}, data)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: HTTP %d: %s", name, resp.StatusCode, body)
	}
	return nil
}

// Raw returns the stored card (nil when missing).
func (b *Book) Raw(name string) []byte {
	resp, body, err := b.Server.request(http.MethodGet, b.Path+name, nil, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	return body
}

// Seed stores a new card and returns its name.
func (b *Book) Seed(fields map[string]string) string {
	uid := vcardmap.NewUID()
	c := vcardmap.New(uid, b.Version)
	if err := c.Apply(fields); err != nil {
		panic(fmt.Sprintf("radicaletest: seed: %v", err))
	}
	c.EnsureFN()
	name := uid + ".vcf"
	if err := b.Put(name, c.Encode()); err != nil {
		panic(fmt.Sprintf("radicaletest: seed: %v", err))
	}
	return name
}

// EditAsUser changes fields of a card as another client would.
func (b *Book) EditAsUser(id string, fields map[string]string) {
	c, err := vcardmap.Parse(b.Raw(id))
	if err != nil {
		panic(fmt.Sprintf("radicaletest: edit %s: %v", id, err))
	}
	if err := c.Apply(fields); err != nil {
		panic(fmt.Sprintf("radicaletest: edit %s: %v", id, err))
	}
	if err := b.Put(id, c.Encode()); err != nil {
		panic(fmt.Sprintf("radicaletest: edit %s: %v", id, err))
	}
}

// Delete removes a card as another client would.
func (b *Book) Delete(id string) error {
	resp, body, err := b.Server.request(http.MethodDelete, b.Path+id, nil, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("DELETE %s: HTTP %d: %s", id, resp.StatusCode, body)
	}
	return nil
}

// Names lists the resource names of the cards in the address book, as
// another client would find them (PROPFIND, Depth: 1).
func (b *Book) Names() ([]string, error) {
	body := `<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>`
	resp, out, err := b.Server.request("PROPFIND", b.Path, http.Header{"Depth": {"1"}, "Content-Type": {"application/xml"}}, []byte(body))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusMultiStatus {
		return nil, fmt.Errorf("PROPFIND %s: HTTP %d: %s", b.Path, resp.StatusCode, out)
	}
	var ms struct {
		Responses []struct {
			Href string `xml:"href"`
		} `xml:"response"`
	}
	if err := xml.Unmarshal(out, &ms); err != nil {
		return nil, fmt.Errorf("PROPFIND %s: %w", b.Path, err)
	}
	var names []string
	for _, r := range ms.Responses {
		p, err := url.PathUnescape(r.Href)
		if err != nil {
			return nil, err
		}
		if name := path.Base(p); strings.HasSuffix(p, ".vcf") {
			names = append(names, name)
		}
	}
	return names, nil
}

// Fields returns a stored card's fields.
func (b *Book) Fields(id string) (map[string]string, bool) {
	raw := b.Raw(id)
	if raw == nil {
		return nil, false
	}
	c, err := vcardmap.Parse(raw)
	if err != nil {
		return nil, false
	}
	return c.Fields(), true
}

// Advance does nothing: Radicale keeps real time.
func (b *Book) Advance(time.Duration) {}

// FailNext makes the next n requests with HTTP method method fail.
func (b *Book) FailNext(method string, n int, f emulator.Fault) { b.Proxy.FailNext(method, n, f) }

// Calls counts requests by HTTP method through the proxy ("*": all).
func (b *Book) Calls(method string) int { return b.Proxy.Calls(method) }

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.w)
}
