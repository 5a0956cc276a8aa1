// Package localhttp runs an http.Handler on a free loopback port for the
// lifetime of a bench run: the comparison servers (bench/baseline,
// bench/redislua) share its start and shutdown.
package localhttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Server is a handler being served on 127.0.0.1.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Start serves h on 127.0.0.1 at a free port.
func Start(h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Shutdown stops the server, waiting for requests in flight until ctx
// ends; it reports a serving error other than the shutdown itself.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
