package ui

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestNothingInline: the policy forbids inline scripts, inline styles and
// absolute URLs would break behind TLS or a proxy, so no file may contain
// them; a violation would only show as a broken page in a browser.
func TestNothingInline(t *testing.T) {
	c := New()
	inlineScript := regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`)
	scriptTag := regexp.MustCompile(`(?i)<script[^>]*>`)
	styleAttr := regexp.MustCompile(`(?i)\sstyle\s*=|<style|\son[a-z]+\s*=`)
	absURL := regexp.MustCompile(`(?i)(fetch\(|src=|href=)\s*['"]?(https?:)?//`)
	checked := 0
	for _, name := range c.Names() {
		body := string(c.files[name].body)
		if strings.HasSuffix(name, ".html") {
			checked++
			if inlineScript.MatchString(body) {
				t.Errorf("%s has an inline script", name)
			}
			for _, tag := range scriptTag.FindAllString(body, -1) {
				if !strings.Contains(tag, "src=") {
					t.Errorf("%s: script tag without src: %s", name, tag)
				}
			}
			if styleAttr.MatchString(body) {
				t.Errorf("%s has an inline style or event handler attribute", name)
			}
		}
		if absURL.MatchString(body) {
			t.Errorf("%s names an absolute URL: %s", name, absURL.FindString(body))
		}
		if strings.Contains(body, "eval(") || strings.Contains(body, "innerHTML") {
			t.Errorf("%s uses eval or innerHTML", name)
		}
	}
	if checked == 0 {
		t.Fatal("no HTML file among the console's files")
	}
}

func TestServeIndexForEmptyName(t *testing.T) {
	c := New()
	for _, name := range []string{"", "/"} {
		w := httptest.NewRecorder()
		if !c.Serve(w, httptest.NewRequest("GET", "/ui/", nil), name) {
			t.Fatalf("Serve(%q) found nothing", name)
		}
		if !strings.Contains(w.Body.String(), "<title>allot console</title>") {
			t.Errorf("Serve(%q) is not the page", name)
		}
	}
	if c.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "/ui/x", nil), "x") {
		t.Error("Serve found a file that does not exist")
	}
}
