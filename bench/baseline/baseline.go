// Package baseline is a trivial gin server that answers allot's booking
// calls without booking anything: it decodes the request body and encodes
// a reservation-shaped answer, as allot's handlers do, and nothing else.
// Driving it with the same load as allot measures what HTTP and JSON alone
// cost on this machine, the ceiling allot's figures are stated against.
package baseline

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"allot/bench/localhttp"
)

// Start serves Handler on 127.0.0.1 at a free port.
func Start() (*localhttp.Server, error) { return localhttp.Start(Handler()) }

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
// /healthz with 200. It keeps no state beyond a counter for ids. It is a
// bare gin engine, as allot's HTTP layer is, without middleware: the
// ceiling allot is measured against is gin's routing, not a faster mux's.
func Handler() http.Handler {
	var seq atomic.Int64
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	ok := func(c *gin.Context) { writeJSON(c, http.StatusOK, map[string]string{"status": "ok"}) }
	r.GET("/healthz", ok)
	r.GET("/readyz", ok)
	r.PUT("/v1/resources/:id", func(c *gin.Context) {
		var spec map[string]any
		if json.NewDecoder(c.Request.Body).Decode(&spec) != nil {
			writeJSON(c, http.StatusBadRequest, map[string]string{"code": "invalid_argument"})
			return
		}
		spec["id"] = c.Param("id")
		writeJSON(c, http.StatusCreated, spec)
	})
	r.POST("/v1/resources/:id/reservations", func(c *gin.Context) {
		var req reserveRequest
		if json.NewDecoder(c.Request.Body).Decode(&req) != nil {
			writeJSON(c, http.StatusBadRequest, map[string]string{"code": "invalid_argument"})
			return
		}
		now := time.Now().UTC()
		writeJSON(c, http.StatusCreated, reservation{
			ID: "bl" + strconv.FormatInt(seq.Add(1), 36), ResourceID: c.Param("id"), Kind: "voucher",
			User: "baseline", Quantity: req.Quantity, Status: "held", CheckIn: req.CheckIn, CheckOut: req.CheckOut,
			CreatedAt: now.Format(time.RFC3339Nano), ExpiresAt: now.Add(15 * time.Minute).Format(time.RFC3339Nano),
			UpdatedAt: now.Format(time.RFC3339Nano),
		})
	})
	r.POST("/v1/reservations/:rid/:action", func(c *gin.Context) {
		status := transitionStatus(c.Param("action"))
		if status == "" {
			writeJSON(c, http.StatusNotFound, map[string]string{"code": "not_found"})
			return
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		writeJSON(c, http.StatusOK, reservation{ID: c.Param("rid"), Kind: "voucher", User: "baseline",
			Quantity: 1, Status: status, CreatedAt: now, UpdatedAt: now})
	})
	return r
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

func writeJSON(c *gin.Context, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.String(http.StatusInternalServerError, err.Error())
		return
	}
	ct := "application/json"
	if code >= 400 {
		ct = "application/problem+json"
	}
	c.Data(code, ct, b)
}
