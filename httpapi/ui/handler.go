package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// ContentSecurityPolicy is sent with every console file. Scripts, styles
// and connections come from the serving node only, and nothing inline is
// run: a value an attacker manages to put into a resource's attributes
// and that the console shows cannot become code.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one console file held in memory with its validator.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Console serves the embedded console files. Make it with New; it is
// read-only after that and safe for concurrent use.
type Console struct {
	files map[string]file // by path below static/, "index.html", "js/api.js"
}

// New reads the embedded files once.
func New() *Console {
	c := &Console{files: map[string]file{}}
	root := files()
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		c.files[p] = file{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return c
}

// Serve answers the console file at name (the path below /ui/; "" or "/"
// is the page itself) and reports whether such a file exists. It writes
// nothing when it does not, so that the caller answers the 404 in its own
// format.
func (c *Console) Serve(w http.ResponseWriter, r *http.Request, name string) bool {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		name = "index.html"
	}
	f, ok := c.files[name]
	if !ok {
		return false
	}
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", f.ctype)
	// Revalidate every time: a node upgraded in place serves new files at
	// the same paths, and the ETag keeps the check cheap.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	return true
}

// Names lists the console's files (paths below /ui/), for tests.
func (c *Console) Names() []string {
	out := make([]string, 0, len(c.files))
	for n := range c.files {
		out = append(out, n)
	}
	return out
}
