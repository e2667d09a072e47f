package e2e

import (
	"bytes"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to read the state database

	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/crmsim"
)

// secretCreds are distinctive so that any trace of them can be found.
var secretCreds = crmsim.Credentials{
	OpenCRMKey: "S3CRET-OPENCRM-KEY-5d1e", OpenCRMPasskey: "S3CRET-OPENCRM-PASSKEY-7f3a",
	CO3APIKey: "S3CRET-CO3-APIKEY-91c4", CO3Username: "s3cret-co3-user-2b8e@example.com", CO3Password: "S3CRET-CO3-PASSWORD-e6d0",
	CBAppID: "S3CRET-CB-APPID-44aa", CBAppKey: "S3CRET-CB-APPKEY-0b7c", CBToken: "S3CRET-CB-TOKEN-a1f2", CBSecret: "S3CRET-CB-SECRET-93de",
	ClientAPIKey: "S3CRET-CLIENTAPI-KEY-6c5b",
}

// sessionKeys records the session keys a CO3 emulator hands out.
type sessionKeys struct {
	mu   sync.Mutex
	keys []string
}

var sessionKeyInReply = regexp.MustCompile(`session_key"?\s*[:>]\s*"?([0-9A-Za-z]{16,})`)

// wrap serves h and records the session keys of authenticate replies.
func (s *sessionKeys) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/authenticate") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for _, m := range sessionKeyInReply.FindAllStringSubmatch(rec.Body.String(), -1) {
			s.mu.Lock()
			s.keys = append(s.keys, m[1])
			s.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func (s *sessionKeys) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys...)
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestSecretsStaySecret runs syncd at debug level, in JSON and text log
// formats, through a clean run, a run with injected 500s and 429s, and
// runs with a wrong key: no credential, no MD5 of the CO3 password, no
// session or access key appears in syncd's output, in status, explain or
// conflict listings, or anywhere in the state database.
func TestSecretsStaySecret(t *testing.T) {
	t.Parallel()
	creds := secretCreds
	sim, err := crmsim.Start(crmsim.Options{People: 60, Seed: 11, Credentials: &creds, Only: []string{"opencrm", "clientbook", "clientapi"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	// CO3 is served here, behind a recorder of the session keys it issues.
	sim.CO3 = co3test.New(co3test.Config{APIKey: creds.CO3APIKey, Username: creds.CO3Username, Password: creds.CO3Password, Clock: sim.Clock})
	for _, p := range sim.People[len(sim.People)*4/10:] {
		sim.CO3.Seed(crmsim.CO3Fields(p))
	}
	var sessions sessionKeys
	co3srv := httptest.NewServer(sessions.wrap(sim.CO3))
	t.Cleanup(co3srv.Close)
	sim.URLs["co3"] = co3srv.URL + "/api"

	dir := t.TempDir()
	state := dir + "/state.db"
	var outputs []string // everything syncd printed, labelled
	record := func(label string, r result) {
		outputs = append(outputs, label+"\n"+r.Stdout+"\n"+r.Stderr)
	}
	scenario := func(name, format string, edit func(string) string) (*env, result) {
		e := configure(t, sim, crmsim.ConfigOptions{State: state, LogLevel: "debug", LogFormat: format}, edit)
		r := e.runOnce()
		record(name, r)
		t.Logf("%s: exit %d, %d bytes of log", name, r.Code, len(r.Stderr))
		if !strings.Contains(r.Stderr, `level=DEBUG`) && !strings.Contains(r.Stderr, `"level":"DEBUG"`) {
			t.Errorf("%s: no debug log lines; the scenario tests nothing:\n%s", name, r.Stderr)
		}
		return e, r
	}

	e, _ := scenario("clean run (json)", "json", nil)
	e.checkConverged()

	// Injected server errors and rate limits on reads and writes.
	sim.Clock.Advance(time.Minute)
	p := sim.People[len(sim.People)/2]
	sim.OpenCRM.EditAsUser(sim.FindByEmail("opencrm", p.Email), map[string]string{"title": "Secret Keeper"})
	sim.OpenCRM.FailNext("get_contact_list", 1, emulator.Fault{Status: 500})
	sim.CO3.FailNext("getContactList", 1, emulator.Fault{Status: 429, RetryAfter: "1"})
	sim.CO3.FailNext("setContact", 1, emulator.Fault{Status: 500})
	sim.ClientBook.FailNext("clients/list", 1, emulator.Fault{Status: 503, RetryAfter: "1"})
	sim.ClientBook.FailNext("clients/edit", 1, emulator.Fault{Status: 429})
	sim.ClientAPI.FailNext("*", 1, emulator.Fault{Status: 500})
	scenario("faults (text)", "text", nil)
	if got := e.fields("co3", p.Email)["contact_job"]; got != "Secret Keeper" {
		t.Errorf("the edit did not reach CO3 through the injected faults: %q", got)
	}

	// A wrong key on one connector, in each format.
	wrongPasskey, wrongPassword := "S3CRET-WRONG-PASSKEY-c0de", "S3CRET-WRONG-CO3-PASSWORD-8e2f"
	for _, w := range []struct{ connector, format, right, wrong string }{
		{"opencrm", "json", creds.OpenCRMPasskey, wrongPasskey},
		{"co3", "text", creds.CO3Password, wrongPassword},
	} {
		_, r := scenario("wrong "+w.connector+" key ("+w.format+")", w.format, func(s string) string {
			return strings.Replace(s, `"`+w.right+`"`, `"`+w.wrong+`"`, 1)
		})
		if r.Code != 1 || !regexp.MustCompile(`(?m)^\s+`+w.connector+`: .*(auth|credential|key|password)`).MatchString(r.Stdout) {
			t.Errorf("wrong %s key: want exit 1 and the connector's authentication error in the summary, got\n%s", w.connector, r)
		}
	}

	for _, args := range [][]string{
		{"status", "-config", e.config},
		{"explain", "-config", e.config, p.Email},
		{"conflicts", "list", "--all", "-config", e.config},
		{"check-config", "-config", e.config},
	} {
		r := syncd(t, args...)
		record(strings.Join(args[:1], " "), r)
	}

	secrets := map[string]string{}
	for name, v := range map[string]string{
		"OpenCRM key": creds.OpenCRMKey, "OpenCRM passkey": creds.OpenCRMPasskey,
		"CO3 API key": creds.CO3APIKey, "CO3 username": creds.CO3Username, "CO3 password": creds.CO3Password,
		"CO3 password MD5":   md5hex(creds.CO3Password),
		"Client Book app id": creds.CBAppID, "Client Book app key": creds.CBAppKey,
		"Client Book token": creds.CBToken, "Client Book secret": creds.CBSecret,
		"Client API key":         creds.ClientAPIKey,
		"wrong OpenCRM passkey":  wrongPasskey,
		"wrong CO3 password":     wrongPassword,
		"wrong CO3 password MD5": md5hex(wrongPassword),
	} {
		secrets[name] = v
		if esc := url.QueryEscape(v); esc != v {
			secrets[name+" (escaped)"] = esc
		}
	}
	keys := sessions.list()
	if len(keys) == 0 {
		t.Error("no CO3 session key was recorded; the session-key check tests nothing")
	}
	for i, k := range keys {
		secrets[fmt.Sprintf("CO3 session key #%d", i+1)] = k
	}
	for i, k := range sim.OpenCRM.AccessKeys() {
		secrets[fmt.Sprintf("OpenCRM access key #%d", i+1)] = k
	}

	for _, out := range outputs {
		label, _, _ := strings.Cut(out, "\n")
		for name, v := range secrets {
			if i := strings.Index(out, v); i >= 0 {
				t.Errorf("%s: the %s appears in syncd's output: …%s…", label, name, out[max(0, i-200):min(len(out), i+len(v)+50)])
			}
		}
	}
	rows := dumpDatabase(t, state)
	for name, v := range secrets {
		for _, row := range rows {
			if strings.Contains(row, v) {
				t.Errorf("the %s appears in the state database: %s", name, row)
			}
		}
	}
	// Also the raw bytes, free pages and WAL included.
	for _, f := range []string{state, state + "-wal", state + ".lock"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for name, v := range secrets {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("the %s appears in the bytes of %s", name, f)
			}
		}
	}
}

// dumpDatabase returns every row of every table of the SQLite file at
// path, one "table: col=value …" line per row.
func dumpDatabase(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 3 {
		t.Fatalf("the state database has only tables %v", tables)
	}
	var out []string
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString(table + ":")
			for i, c := range cols {
				v := vals[i]
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, " %s=%v", c, v)
			}
			out = append(out, b.String())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	if len(out) == 0 {
		t.Fatal("the state database is empty")
	}
	return out
}
