package feed

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"", 0}, {"3", 3 * time.Second}, {"0", 0}, {"-1", 0}, {"soon", 0}} {
		if got := retryAfter(tc.in); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	at := time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)
	if got := retryAfter(at); got < 8*time.Second || got > 10*time.Second {
		t.Errorf("retryAfter(%q) = %v, want about 10s", at, got)
	}
}

func TestNewChecksConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no url":   {Token: "t"},
		"no token": {URLs: []string{"http://x"}},
		"wait 61s": {URLs: []string{"http://x"}, Token: "t", Wait: 61 * time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	urls := []string{"http://a:1/ ", "http://b:2"}
	c, err := New(Config{URLs: urls, Token: "t"})
	if err != nil || c.cfg.URLs[0] != "http://a:1" || urls[0] != "http://a:1/ " || c.cfg.Limit != 500 {
		t.Errorf("New = %+v, %v; caller's slice %q", c.cfg, err, urls)
	}
}
