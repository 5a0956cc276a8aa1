package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"allot/httpapi"
)

// curlLine is one line of the limit examples in docs/API.md.
var curlLine = regexp.MustCompile(`^curl -s(?: -X (\w+))? "?(localhost:8080[^ "]+)"?((?: -H "[^"]+")*)(?: -d '([^']*)')?  # (\d{3})(?: (\w+))?`)

// TestAPIDocLimitExamples runs the worked examples of limit groups in
// docs/API.md against a node, line by line, and checks the status (and
// problem code) each line says it answers: the documentation's curl lines
// run as written.
func TestAPIDocLimitExamples(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "(`TestAPIDocLimitExamples`)")
	if start < 0 {
		t.Fatal("docs/API.md has no limit examples")
	}
	block := text[start:]
	block = block[strings.Index(block, "```sh\n")+6:]
	block = block[:strings.Index(block, "```")]

	cfg := DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.AuthSecret = testSecret
	cfg.HTTP.IPRateLimit.PerSecond = 0
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c := newClient(t, s.HTTPAddr())
	waitFor(t, 10*time.Second, func() bool { return c.status("GET", "/readyz", "", nil) == http.StatusOK })
	tokens := map[string]string{}
	for name, who := range map[string][2]string{"$ADMIN": {"root", httpapi.RoleAdmin}, "$ANN": {"ann", ""}, "$BOB": {"bob", ""}} {
		tok, err := httpapi.MintToken(testSecret, who[0], who[1], time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok
	}
	ran := 0
	for _, line := range strings.Split(block, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := curlLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("a line the test cannot read: %s", line)
		}
		method := m[1]
		if method == "" {
			method = http.MethodGet
		}
		var body io.Reader
		if m[4] != "" {
			body = strings.NewReader(m[4])
		}
		req, err := http.NewRequest(method, "http://"+strings.Replace(m[2], "localhost:8080", s.HTTPAddr(), 1), body)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range regexp.MustCompile(`-H "([^:]+): ([^"]+)"`).FindAllStringSubmatch(m[3], -1) {
			v := h[2]
			for name, tok := range tokens {
				v = strings.ReplaceAll(v, name, tok)
			}
			req.Header.Set(h[1], v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkOpenAPI(t, req, resp, got)
		want, _ := strconv.Atoi(m[5])
		if resp.StatusCode != want || m[6] != "" && !strings.Contains(string(got), `"code":"`+m[6]+`"`) {
			t.Fatalf("%s\nanswered %d %s", line, resp.StatusCode, got)
		}
		if i := strings.Index(line, `"limit": "`); i > 0 && !strings.Contains(string(got), `"limit":"`+strings.Split(line[i+10:], `"`)[0]+`"`) {
			t.Fatalf("%s\nanswered %s", line, got)
		}
		ran++
	}
	if ran < 15 {
		t.Fatalf("only %d example lines ran", ran)
	}
}
