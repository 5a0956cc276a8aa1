package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseJoin(t *testing.T) {
	got, err := parseJoin(" 127.0.0.1:8081, http://127.0.0.1:8082/ ,,https://db3.example:8443")
	want := []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082", "https://db3.example:8443"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseJoin: %q, %v", got, err)
	}
	if got, err := parseJoin(""); err != nil || len(got) != 0 {
		t.Fatalf("empty --join: %q, %v", got, err)
	}
	for _, bad := range []string{"localhost", "ftp://h:1", "http://h:1/path"} {
		if _, err := parseJoin(bad); err == nil {
			t.Errorf("--join %q accepted", bad)
		}
	}
}

func TestServeRefusesBootstrapWithJoin(t *testing.T) {
	dir := t.TempDir()
	err := run([]string{"serve", "--data-dir", dir, "--bootstrap", "--join", "http://127.0.0.1:1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--bootstrap and --join") {
		t.Fatalf("serve --bootstrap --join: %v", err)
	}
	if err := run([]string{"serve", "--data-dir", dir, "--join", "not a url"}, io.Discard, io.Discard); err == nil {
		t.Fatal("serve with a bad --join started")
	}
}

// TestBootstrapExpectSettings: --bootstrap-expect comes from the flag, the
// environment or the config file, turns the lone node's own founding off,
// and is refused with --bootstrap or without enough peers in --join.
func TestBootstrapExpectSettings(t *testing.T) {
	file := writeConfig(t, "bootstrap-expect: 3\njoin: [http://n1:8080, http://n2:8080, http://n3:8080]\n")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"flag", []string{"--bootstrap-expect", "5"}, nil, 5},
		{"env", nil, map[string]string{"ALLOT_BOOTSTRAP_EXPECT": "4"}, 4},
		{"file", []string{"--config", file}, nil, 3},
		{"env beats file", []string{"--config", file}, map[string]string{"ALLOT_BOOTSTRAP_EXPECT": "2"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, o := newServeFlags(io.Discard)
			if err := parseSettings(fs, tc.args, envMap(tc.env), nil); err != nil {
				t.Fatal(err)
			}
			if o.expect != tc.want {
				t.Fatalf("bootstrap-expect %d, want %d", o.expect, tc.want)
			}
		})
	}
	three := []string{"http://n1:8080", "http://n2:8080", "http://n3:8080"}
	for _, tc := range []struct {
		name    string
		o       serveOpts
		join    []string
		wantErr string
	}{
		{"own address listed", serveOpts{expect: 3}, three, ""},
		{"only the others listed", serveOpts{expect: 3}, three[1:], ""},
		{"one node", serveOpts{expect: 1}, nil, ""},
		{"too few peers", serveOpts{expect: 3}, three[:1], "needs the other nodes"},
		{"too few peers, one twice", serveOpts{expect: 3}, []string{three[1], three[1]}, "needs the other nodes"},
		{"an address twice", serveOpts{expect: 3}, append(slices.Clone(three), three[0]), ""},
		// Two disjoint triples of six nodes could each found a cluster.
		{"more addresses than nodes", serveOpts{expect: 3}, append(slices.Clone(three), "http://n4:8080"), "at most 3 addresses"},
		{"one node with --join", serveOpts{expect: 1}, three[:1], "--bootstrap-expect 1 and --join"},
		{"with --bootstrap", serveOpts{expect: 3, bootstrap: true}, nil, "--bootstrap and --bootstrap-expect"},
		{"negative", serveOpts{expect: -1}, nil, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.checkFounding(tc.join)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("checkFounding: %v, want %q", err, tc.wantErr)
			}
		})
	}
	if cfg := (&serveOpts{expect: 3}).config(false); cfg.Bootstrap || cfg.BootstrapExpect != 3 {
		t.Fatalf("config: bootstrap %v, expect %d", cfg.Bootstrap, cfg.BootstrapExpect)
	}
}
