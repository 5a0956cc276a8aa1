package main

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"allot/httpapi"
)

// writeConfig writes a YAML config file into a fresh temp dir.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "allot.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSettingsPrecedence(t *testing.T) {
	file := writeConfig(t, "node-id: from-file\nrate-limit: 50\nmax-token-ttl: 48h\njoin: [127.0.0.1:1, 127.0.0.1:2]\nbootstrap: true\n")
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		wantNode string
		wantRate float64
		wantTTL  time.Duration
		wantJoin string
		wantBoot bool
		wantRetn time.Duration
	}{
		{"defaults", nil, nil, "n1", 100, 720 * time.Hour, "", false, 720 * time.Hour},
		{"file", []string{"--config", file}, nil, "from-file", 50, 48 * time.Hour, "127.0.0.1:1,127.0.0.1:2", true, 720 * time.Hour},
		{"file named by env", nil, map[string]string{"ALLOT_CONFIG": file}, "from-file", 50, 48 * time.Hour, "127.0.0.1:1,127.0.0.1:2", true, 720 * time.Hour},
		{"env beats file", []string{"--config", file},
			map[string]string{"ALLOT_NODE_ID": "from-env", "ALLOT_RATE_LIMIT": "7", "ALLOT_BOOTSTRAP": "false"},
			"from-env", 7, 48 * time.Hour, "127.0.0.1:1,127.0.0.1:2", false, 720 * time.Hour},
		{"flag beats env and file", []string{"--config", file, "--node-id", "from-flag", "--rate-limit", "0", "--retention", "1h"},
			map[string]string{"ALLOT_NODE_ID": "from-env", "ALLOT_RATE_LIMIT": "7"},
			"from-flag", 0, 48 * time.Hour, "127.0.0.1:1,127.0.0.1:2", true, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, o := newServeFlags(io.Discard)
			if err := parseSettings(fs, tc.args, envMap(tc.env), nil); err != nil {
				t.Fatal(err)
			}
			if o.nodeID != tc.wantNode || o.rateLimit != tc.wantRate || o.maxTokenTTL != tc.wantTTL ||
				o.join != tc.wantJoin || o.bootstrap != tc.wantBoot || o.retention != tc.wantRetn {
				t.Errorf("got node %q rate %g ttl %s join %q bootstrap %v retention %s", o.nodeID, o.rateLimit, o.maxTokenTTL, o.join, o.bootstrap, o.retention)
			}
		})
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		args       []string
		env        map[string]string
		want       string
	}{
		{"unknown key", "node-id: n1\nrate-limt: 5\n", nil, nil, `unknown setting "rate-limt"`},
		{"bad value", "rate-limit: lots\n", nil, nil, "rate-limit"},
		{"bad duration", "max-token-ttl: 3 days\n", nil, nil, "max-token-ttl"},
		{"nested", "node-id: {a: b}\n", nil, nil, "node-id"},
		{"empty value", "node-id:\n", nil, nil, "node-id: has no value"},
		{"config in config", "config: other.yaml\n", nil, nil, `"config" cannot be set`},
		{"not yaml", "node-id: [\n", nil, nil, "allot.yaml"},
		{"missing file", "", []string{"--config", "/nonexistent/allot.yaml"}, nil, "no such file"},
		{"bad env", "", nil, map[string]string{"ALLOT_RATE_LIMIT": "x"}, "ALLOT_RATE_LIMIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil && tc.yaml != "" {
				args = []string{"--config", writeConfig(t, tc.yaml)}
			}
			fs, _ := newServeFlags(io.Discard)
			err := parseSettings(fs, args, envMap(tc.env), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestServeOptsConfig(t *testing.T) {
	fs, o := newServeFlags(io.Discard)
	if err := parseSettings(fs, []string{"--rate-limit", "0.4", "--admin-rate-limit", "10", "--ip-rate-limit", "0",
		"--max-body", "1024", "--write-timeout", "40s", "--token-cache-size", "0", "--event-retention", "1h"}, envMap(nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	cfg := o.config(true)
	h := cfg.HTTP
	if h.RateLimit.PerSecond != 0.4 || h.RateLimit.Burst != 1 || h.AdminRateLimit.PerSecond != 10 || h.AdminRateLimit.Burst != 20 ||
		h.IPRateLimit.PerSecond != 0 || h.MaxBodyBytes != 1024 || h.Timeouts.Write != 40*time.Second ||
		h.Timeouts.ReadHeader != httpapi.DefaultTimeouts().ReadHeader || h.TokenCacheSize != 0 ||
		cfg.EventRetention != time.Hour || cfg.Retention != 720*time.Hour || !cfg.Bootstrap {
		t.Errorf("config %+v", cfg)
	}
	for _, bad := range [][]string{{"--write-timeout", "5s"}, {"--rate-limit", "-1"}, {"--max-body", "0"}, {"--idle-timeout", "0s"}} {
		fs, o := newServeFlags(io.Discard)
		if err := parseSettings(fs, bad, envMap(nil), nil); err != nil {
			t.Fatal(err)
		}
		if err := o.check(); err == nil {
			t.Errorf("%v passed the check", bad)
		}
	}
}

func TestTokenCommand(t *testing.T) {
	t.Setenv("ALLOT_AUTH_SECRET", strings.Repeat("z", 32))
	var out strings.Builder
	if err := run([]string{"token", "--sub", "feed", "--role", "consumer"}, &out, io.Discard); err != nil || strings.Count(out.String(), ".") != 2 {
		t.Fatalf("consumer token: %q, %v", out.String(), err)
	}
	err := run([]string{"token", "--sub", "a", "--ttl", "721h"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "max-token-ttl") {
		t.Fatalf("--ttl above the max: %v", err)
	}
	if err := run([]string{"token", "--sub", "a", "--ttl", "721h", "--max-token-ttl", "0"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("--ttl with no max: %v", err)
	}
	// One config file serves both commands: serve-only keys are skipped,
	// max-token-ttl is read.
	file := writeConfig(t, "node-id: n2\nrate-limit: 5\nmax-token-ttl: 1h\n")
	err = run([]string{"token", "--sub", "a", "--ttl", "2h", "--config", file}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "max-token-ttl 1h") {
		t.Fatalf("max-token-ttl from the file: %v", err)
	}
	if err := run([]string{"token", "--sub", "a", "--config", writeConfig(t, "nodeid: x\n")}, io.Discard, io.Discard); err == nil {
		t.Fatal("a key of neither command accepted")
	}
}

func TestServeRefusesBadJWKS(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(bad, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"serve", "--data-dir", dir, "--jwks-file", bad, "--jwt-issuer", "https://idp.example"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--jwks-file") {
		t.Fatalf("serve with an empty JWKS: %v", err)
	}
}

func TestServeJWKSNeedsIssuer(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jwks-file", "keys.json"}, "--jwks-file needs --jwt-issuer"},
		{[]string{"--jwks-file", "keys.json", "--jwt-issuer", "https://idp.example", "--jwt-subject-prefix", ""}, "--jwt-subject-prefix"},
	} {
		err := run(append([]string{"serve", "--data-dir", dir}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	// The settings reach the HTTP config, from the environment too.
	fs, o := newServeFlags(io.Discard)
	env := envMap(map[string]string{"ALLOT_JWT_ISSUER": "https://idp.example", "ALLOT_JWT_AUDIENCE": "allot"})
	if err := parseSettings(fs, nil, env, nil); err != nil {
		t.Fatal(err)
	}
	h := o.config(false).HTTP
	if h.Issuer != "https://idp.example" || h.Audience != "allot" || h.SubjectPrefix != httpapi.DefaultSubjectPrefix {
		t.Errorf("issuer %q audience %q prefix %q", h.Issuer, h.Audience, h.SubjectPrefix)
	}
}

// TestTokenCount: --prefix u --count N mints N tokens, one per line, for
// users u1..uN, each verifiable with the secret; bad combinations are
// refused.
func TestTokenCount(t *testing.T) {
	secret := strings.Repeat("c", 32)
	t.Setenv("ALLOT_AUTH_SECRET", secret)
	var out strings.Builder
	if err := run([]string{"token", "--prefix", "u", "--count", "250", "--ttl", "1h"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 250 {
		t.Fatalf("%d lines, want 250", len(lines))
	}
	seen := map[string]bool{}
	for i, tok := range lines {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
			jwt.WithValidMethods([]string{"HS256"}))
		sub, role := claims["sub"], claims["role"]
		if err != nil || sub != "u"+strconv.Itoa(i+1) || role != httpapi.RoleUser || seen[tok] {
			t.Fatalf("line %d: sub %q role %q err %v (duplicate %v)", i+1, sub, role, err, seen[tok])
		}
		seen[tok] = true
	}
	for _, bad := range [][]string{
		{"token", "--count", "3"},
		{"token", "--sub", "a", "--count", "3"},
		{"token", "--sub", "a", "--prefix", "u"},
		{"token", "--prefix", "u", "--count", "0"},
		{"token"},
	} {
		if err := run(bad, io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
