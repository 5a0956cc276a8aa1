// Package ui is the operator console served at /ui: static HTML, CSS and
// JavaScript embedded in the binary, so that every node serves the same
// console without a build step or files on disk. The console talks to the
// node that served it through the public API only, with the token the
// operator pastes in; the server side holds no state for it.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed static
var embedded embed.FS

// files is the console's files, rooted at static/.
func files() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic(err) // static/ is part of the binary: it always exists
	}
	return sub
}
