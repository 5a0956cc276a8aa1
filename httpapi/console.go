package httpapi

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
	"allot/httpapi/ui"
)

// consoleRoutes serves the operator console (package ui) at /ui/. The
// files need no token: the console asks for one and sends it with each
// API call, which is where roles are checked.
func (s *Server) consoleRoutes() {
	console := ui.New()
	s.handle(http.MethodGet, "/ui", func(c *gin.Context) {
		// A path, not a URL: the browser keeps the scheme and host it
		// used, so the console works behind TLS and proxies alike.
		c.Redirect(http.StatusFound, "/ui/")
	})
	s.handle(http.MethodGet, "/ui/*file", func(c *gin.Context) {
		if !console.Serve(c.Writer, c.Request, c.Param("file")) {
			s.fail(c, fmt.Errorf("the console has no file %q: %w", c.Param("file"), domain.ErrNotFound))
		}
	})
}
