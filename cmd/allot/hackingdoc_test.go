package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the module root, seen from this package's directory.
const repoRoot = "../.."

var (
	// hackingStep is a numbered step of HACKING.md's write path: a file,
	// then the functions of that file it runs, then " — " and prose.
	hackingStep = regexp.MustCompile("^\\d+\\. (`[^`]+`(?:[ ,\\n]+`[^`]+`)*) —")
	backticked  = regexp.MustCompile("`([^`]+)`")
	goFileName  = regexp.MustCompile(`^[\w./*-]+\.go$`)
	identifier  = regexp.MustCompile(`^([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?$`)
	numbered    = regexp.MustCompile(`^\d+\. `)
)

// TestHackingNames keeps docs/HACKING.md true to the code: every file it
// names exists, and every function a write-path step names is declared in
// the file that step names, so a rename or a move that leaves the map
// behind fails here.
func TestHackingNames(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "HACKING.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	names := goFileNames(t)
	for _, m := range backticked.FindAllStringSubmatch(text, -1) {
		name := m[1]
		if !goFileName.MatchString(name) {
			continue
		}
		if !fileExists(name, names) {
			t.Errorf("HACKING.md names %s, which does not exist", name)
		}
	}
	steps := 0
	for _, item := range listItems(text) {
		m := hackingStep.FindStringSubmatch(item)
		if m == nil {
			continue
		}
		steps++
		toks := backticked.FindAllStringSubmatch(m[1], -1)
		path := toks[0][1]
		src, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Errorf("step %q: %v", firstLine(item), err)
			continue
		}
		for _, tok := range toks[1:] {
			if !declares(string(src), tok[1]) {
				t.Errorf("HACKING.md: %s does not declare %s", path, tok[1])
			}
		}
	}
	if steps < 20 {
		t.Fatalf("found %d write-path steps in HACKING.md: the step format changed", steps)
	}
}

// listItems splits markdown into numbered list items, each with its
// indented continuation lines joined on.
func listItems(text string) []string {
	var items []string
	for _, line := range strings.Split(text, "\n") {
		switch {
		case numbered.MatchString(line):
			items = append(items, line)
		case len(items) > 0 && strings.HasPrefix(line, "   "):
			items[len(items)-1] += "\n" + strings.TrimSpace(line)
		default:
			items = append(items, "")
		}
	}
	return items
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// declares reports whether src declares name: "Type.Method" as a method
// (or, for an interface, a method of it), "Name" as a func, type, var or
// const.
func declares(src, name string) bool {
	m := identifier.FindStringSubmatch(name)
	if m == nil {
		return false
	}
	q := regexp.QuoteMeta
	if m[2] != "" {
		typ, method := q(m[1]), q(m[2])
		return regexp.MustCompile(`(?m)^func \(\w+ \*?`+typ+`\) `+method+`\(`).MatchString(src) ||
			regexp.MustCompile(`(?m)^type `+typ+` interface`).MatchString(src) &&
				regexp.MustCompile(`(?m)^\t+`+method+`\(`).MatchString(src)
	}
	n := q(m[1])
	return regexp.MustCompile(`(?m)^func (\(\w+ \*?\w+\) )?`+n+`\(`).MatchString(src) ||
		regexp.MustCompile(`(?m)^(type|var|const) `+n+`\b`).MatchString(src) ||
		regexp.MustCompile(`(?m)^\t`+n+`\b.*=`).MatchString(src)
}

// goFileNames maps every .go file's base name in the module to true.
func goFileNames(t *testing.T) map[string]bool {
	names := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != repoRoot {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			names[d.Name()] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// fileExists checks a path from the module root (a glob may stand for
// several), or a bare file name anywhere in the module.
func fileExists(name string, names map[string]bool) bool {
	if !strings.Contains(name, "/") {
		return names[name]
	}
	matches, err := filepath.Glob(filepath.Join(repoRoot, name))
	return err == nil && len(matches) > 0
}
