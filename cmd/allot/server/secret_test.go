package server

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadSecretTrims checks that every source of the secret is trimmed of
// surrounding white space, so the same key results however it was pasted.
func TestLoadSecretTrims(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("\n "+key+" \r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, env, file string }{
		{"env plain", key, ""},
		{"env newline", key + "\n", ""},
		{"env crlf and spaces", "  \t" + key + " \r\n", ""},
		{"file", "", file},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadSecret(tc.env, tc.file, t.TempDir(), false)
			if err != nil || string(got) != key {
				t.Fatalf("LoadSecret = %q, %v; want %q", got, err, key)
			}
		})
	}
	if got, err := LoadSecret(" \n", "", t.TempDir(), true); err == nil {
		t.Fatalf("blank ALLOT_AUTH_SECRET accepted as %q", got)
	}
}
