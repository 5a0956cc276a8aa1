package httpapi

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// pprofRoutes serves Go's profiles under /debug/pprof/ to admins only: a
// profile shows internals and a CPU profile or trace costs the node real
// work while it runs. One route covers them all, so metrics get one label.
//
// Profiles are fetched with a token, e.g.
//
//	curl -H "Authorization: Bearer $TOKEN" 'http://node/debug/pprof/profile?seconds=20' > cpu.pprof
//
// CPU profiles and traces must end within the server's WriteTimeout (30s).
func (s *Server) pprofRoutes() {
	h := s.authed(servePprof, true)
	s.handle(http.MethodGet, "/debug/pprof/*profile", h)
	s.handle(http.MethodPost, "/debug/pprof/*profile", h) // symbol lookups post their addresses
}

func servePprof(c *gin.Context, _ domain.Principal) error {
	w, r := c.Writer, c.Request
	switch name := strings.TrimPrefix(c.Param("profile"), "/"); name {
	case "":
		pprof.Index(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default: // heap, goroutine, allocs, block, mutex, threadcreate; 404 for others
		pprof.Handler(name).ServeHTTP(w, r)
	}
	return nil
}
