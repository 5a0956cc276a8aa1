// Package baseline is a trivial HTTP server that answers allot's booking
// calls without booking anything: it decodes the request body and encodes
// a reservation-shaped answer, as allot's handlers do, and nothing else.
// Driving it with the same load as allot measures what HTTP and JSON alone
// cost on this machine, the ceiling allot's figures are stated against.
package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Server is a running baseline server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Start serves Handler on 127.0.0.1 at a free port.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv:  &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Shutdown stops the server, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// reserveRequest mirrors the body of POST /v1/resources/{id}/reservations.
type reserveRequest struct {
	Quantity int64  `json:"quantity"`
	CheckIn  string `json:"check_in,omitempty"`
	CheckOut string `json:"check_out,omitempty"`
}

// reservation mirrors allot's reservation answer.
type reservation struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id,omitempty"`
	Kind       string `json:"kind"`
	User       string `json:"user"`
	Quantity   int64  `json:"quantity"`
	Status     string `json:"status"`
	CheckIn    string `json:"check_in,omitempty"`
	CheckOut   string `json:"check_out,omitempty"`
	CreatedAt  string `json:"created_at"`
	ExpiresAt  string `json:"expires_at,omitempty"`
	UpdatedAt  string `json:"updated_at"`
}

// Handler answers PUT /v1/resources/{id} with 201, reserve with 201 and a
// held reservation, transitions with 200 and the new status, /readyz and
// /healthz with 200. It keeps no state beyond a counter for ids.
func Handler() http.Handler {
	var seq atomic.Int64
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("PUT /v1/resources/{id}", func(w http.ResponseWriter, r *http.Request) {
		var spec map[string]any
		if json.NewDecoder(r.Body).Decode(&spec) != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"code": "invalid_argument"})
			return
		}
		spec["id"] = r.PathValue("id")
		writeJSON(w, http.StatusCreated, spec)
	})
	mux.HandleFunc("POST /v1/resources/{id}/reservations", func(w http.ResponseWriter, r *http.Request) {
		var req reserveRequest
		if json.NewDecoder(r.Body).Decode(&req) != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"code": "invalid_argument"})
			return
		}
		now := time.Now().UTC()
		writeJSON(w, http.StatusCreated, reservation{
			ID: "bl" + strconv.FormatInt(seq.Add(1), 36), ResourceID: r.PathValue("id"), Kind: "voucher",
			User: "baseline", Quantity: req.Quantity, Status: "held", CheckIn: req.CheckIn, CheckOut: req.CheckOut,
			CreatedAt: now.Format(time.RFC3339Nano), ExpiresAt: now.Add(15 * time.Minute).Format(time.RFC3339Nano),
			UpdatedAt: now.Format(time.RFC3339Nano),
		})
	})
	mux.HandleFunc("POST /v1/reservations/{rid}/{action}", func(w http.ResponseWriter, r *http.Request) {
		status := transitionStatus(r.PathValue("action"))
		if status == "" {
			writeJSON(w, http.StatusNotFound, map[string]string{"code": "not_found"})
			return
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		writeJSON(w, http.StatusOK, reservation{ID: r.PathValue("rid"), Kind: "voucher", User: "baseline",
			Quantity: 1, Status: status, CreatedAt: now, UpdatedAt: now})
	})
	return mux
}

// transitionStatus is the status a transition endpoint leads to.
func transitionStatus(action string) string {
	switch action {
	case "confirm":
		return "confirmed"
	case "cancel":
		return "cancelled"
	case "check-in":
		return "checked_in"
	case "complete":
		return "completed"
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if code >= 400 {
		h.Set("Content-Type", "application/problem+json")
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}
