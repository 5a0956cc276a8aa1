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
