package co3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
)

// The password never leaves the process except as its MD5 digest, and no
// secret (password, digest, API key, session key) appears in a log line or
// an error, on success and failure paths alike.
func TestSecretsStayOut(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		t.Run(string(f), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{format: f, record: true})
			seedVaried(e, 3)
			var errs []string
			note := func(err error) {
				if err != nil {
					errs = append(errs, err.Error())
					e.conn.log.Error("call failed", "err", err)
				}
			}
			note(e.conn.Pull(ctx, connectors.PullOptions{}, func(context.Context, connectors.Page) error { return nil }))
			e.emu.ExpireSessions()
			_, err := e.conn.Get(ctx, "1")
			note(err)
			e.emu.TruncateNext(co3test.MethodGetContact, 1)
			_, err = e.conn.Get(ctx, "1")
			note(err)
			e.emu.FailNext(co3test.MethodGetContact, 1, faultBody(fmt.Sprintf(`{"response":{"error":{"code":"odd","message":"echo %s %s"}}}`, testAPIKey, testPassword), JSON))
			_, err = e.conn.Get(ctx, "1")
			note(err)
			e.emu.ExpireSessions()
			e.emu.FailNext(co3test.MethodAuthenticate, 1, faultStatus(500))
			_, err = e.conn.Get(ctx, "1")
			note(err)
			if len(errs) < 2 {
				t.Fatalf("expected failures to inspect, got %v", errs)
			}

			reqs, _, _ := e.wire.all()
			sum := md5.Sum([]byte(testPassword))
			digest := hex.EncodeToString(sum[:])
			var sawDigest bool
			for _, r := range reqs {
				if strings.Contains(r, testPassword) {
					t.Errorf("password in clear on the wire: %s", r)
				}
				sawDigest = sawDigest || strings.Contains(r, digest)
			}
			if !sawDigest {
				t.Error("the password's MD5 digest was never sent")
			}
			sessions := sessionKeysIn(reqs)
			if len(sessions) < 2 {
				t.Fatalf("found %d session keys on the wire", len(sessions))
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "session opened") {
				t.Fatalf("debug logs not captured: %q", logs)
			}
			for _, secret := range append([]string{testPassword, digest, testAPIKey}, sessions...) {
				if strings.Contains(logs, secret) {
					t.Errorf("secret %q in the logs", secret)
				}
				for _, msg := range errs {
					if strings.Contains(msg, secret) {
						t.Errorf("secret %q in error %q", secret, msg)
					}
				}
			}
		})
	}
}

// sessionKeysIn picks the session keys out of recorded requests.
func sessionKeysIn(reqs []string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, r := range reqs {
		for _, open := range []string{`"session_key":"`, `<session_key><![CDATA[`} {
			i := strings.Index(r, open)
			if i < 0 {
				continue
			}
			rest := r[i+len(open):]
			if end := strings.IndexAny(rest, `"]`); end > 0 && !seen[rest[:end]] {
				seen[rest[:end]] = true
				keys = append(keys, rest[:end])
			}
		}
	}
	return keys
}
