package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
	"allot/httpapi/jsonview"
)

// maxReservationIDLen is the longest reservation id the server makes.
const maxReservationIDLen = 64

// reserveBody is the body of POST /v1/resources/{id}/reservations.
type reserveBody struct {
	Quantity int64  `json:"quantity"`
	CheckIn  string `json:"check_in"`
	CheckOut string `json:"check_out"`
}

// reservationID reads and checks the :rid path parameter: reservation ids
// are at most 64 URL-safe characters, so anything else cannot exist.
func reservationID(c *gin.Context) (string, error) {
	rid := c.Param("rid")
	ok := len(rid) > 0 && len(rid) <= maxReservationIDLen
	for i := 0; ok && i < len(rid); i++ {
		ch := rid[i]
		ok = ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == ':'
	}
	if !ok || strings.Trim(rid, ".") == "" {
		return "", fmt.Errorf("reservation id %q: want 1-%d URL-safe characters, not only dots: %w", rid, maxReservationIDLen, domain.ErrInvalidArgument)
	}
	return rid, nil
}

// reserve is the flash-crowd hot path: one body read into a pooled buffer,
// one decode, one engine call, a hand-encoded answer.
func (s *Server) reserve(c *gin.Context, p domain.Principal) error {
	id, err := resourceID(c)
	if err != nil {
		return err
	}
	buf, err := s.readBody(c)
	if err != nil {
		return err
	}
	body := reserveBody{Quantity: 1}
	idem, err := idemKey(c, buf.Bytes())
	if err == nil && len(bytes.TrimSpace(buf.Bytes())) > 0 {
		err = decodeReserveBody(buf.Bytes(), &body)
	}
	s.putBuf(buf)
	if err != nil {
		return err
	}
	req := domain.ReserveRequest{User: p.User, Quantity: body.Quantity}
	if req.Quantity < 1 || req.Quantity > domain.MaxQuantity {
		return fmt.Errorf("quantity must be between 1 and %d: %w", domain.MaxQuantity, domain.ErrInvalidArgument)
	}
	if (body.CheckIn == "") != (body.CheckOut == "") {
		missing := "check_in"
		if body.CheckOut == "" {
			missing = "check_out"
		}
		return fmt.Errorf("%s is missing: a room stay needs check_in and check_out: %w", missing, domain.ErrInvalidArgument)
	}
	if body.CheckIn != "" {
		if req.CheckIn, err = parseDay("check_in", body.CheckIn); err != nil {
			return err
		}
		if req.CheckOut, err = parseDay("check_out", body.CheckOut); err != nil {
			return err
		}
	}
	ctx := s.callContext()
	out, err := s.cfg.Engine.Reserve(ctx, domain.ReserveCommand{ResourceID: id, Caller: p, Request: req, Idem: idem})
	if err != nil {
		return err
	}
	s.writeOutcome(c, out, http.StatusCreated)
	return nil
}

// transition returns the handler of POST /v1/reservations/{rid}/<verb>. The
// body must be empty or an empty JSON object.
func (s *Server) transition(to domain.Status) authedHandler {
	return func(c *gin.Context, p domain.Principal) error {
		rid, err := reservationID(c)
		if err != nil {
			return err
		}
		buf, err := s.readBody(c)
		if err != nil {
			return err
		}
		idem, err := idemKey(c, buf.Bytes())
		if err == nil && len(bytes.TrimSpace(buf.Bytes())) > 0 {
			err = decodeJSON(buf.Bytes(), &struct{}{})
		}
		s.putBuf(buf)
		if err != nil {
			return err
		}
		ctx := s.callContext()
		out, err := s.cfg.Engine.Transition(ctx, domain.TransitionCommand{ReservationID: rid, To: to, Caller: p, Idem: idem})
		if err != nil {
			return err
		}
		s.writeOutcome(c, out, http.StatusOK)
		return nil
	}
}

// writeOutcome answers an engine outcome with its status (def when the
// engine left it 0) and marks replays of a stored idempotent answer.
func (s *Server) writeOutcome(c *gin.Context, out domain.Outcome, def int) {
	code := out.Code
	if code == 0 {
		code = def
	}
	if out.Replayed {
		c.Header(headerReplayed, "true")
	}
	bp := s.getAnswer()
	b := jsonview.AppendReservation((*bp)[:0], &out.Reservation)
	writeData(c, code, contentTypeJSON, b)
	s.putAnswer(bp, b)
}

func (s *Server) getReservation(c *gin.Context, p domain.Principal) error {
	rid, err := reservationID(c)
	if err != nil {
		return err
	}
	var res domain.Reservation
	err = s.read(c, func(st *domain.State) error {
		var ok bool
		if res, ok = st.Reservation(rid); !ok {
			return domain.ReservationNotFound(rid)
		}
		return nil
	})
	if err == nil && !p.CanAccess(res.User) {
		err = fmt.Errorf("reservation %s belongs to another user: %w", rid, domain.ErrPermissionDenied)
	}
	if err != nil {
		return err
	}
	writeData(c, http.StatusOK, contentTypeJSON, jsonview.AppendReservation(make([]byte, 0, 384), &res))
	return nil
}

// listReservations pages through reservations in id order. A user sees
// only their own; an admin may filter by user, resource and status.
func (s *Server) listReservations(c *gin.Context, p domain.Principal) error {
	user := c.Query("user")
	switch {
	case p.Admin:
	case user == "":
		user = p.User
	case user != p.User:
		return fmt.Errorf("listing the reservations of another user needs the admin role: %w", domain.ErrPermissionDenied)
	}
	if len(user) > domain.MaxUserLen {
		return fmt.Errorf("user is at most %d bytes: %w", domain.MaxUserLen, domain.ErrInvalidArgument)
	}
	resource := c.Query("resource")
	if resource != "" && !domain.ValidID(resource) {
		return fmt.Errorf("resource %q is not a resource id: %w", resource, domain.ErrInvalidArgument)
	}
	var status domain.Status
	if st := c.Query("status"); st != "" {
		var err error
		if status, err = domain.ParseStatus(st); err != nil {
			return err
		}
	}
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	after, err := cursor(c)
	if err != nil {
		return err
	}
	items := make([]domain.Reservation, 0, min(limit, 16))
	var next string
	err = s.read(c, func(st *domain.State) error {
		st.ListReservations(user, resource, after, func(r domain.Reservation) bool {
			if resource != "" && r.ResourceID != resource || status != 0 && r.Status != status {
				return true
			}
			if len(items) == limit {
				next = items[limit-1].ID
				return false
			}
			items = append(items, r)
			return true
		})
		return nil
	})
	if err != nil {
		return err
	}
	b := make([]byte, 0, 64+256*len(items))
	b = append(b, `{"items":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonview.AppendReservation(b, &items[i])
	}
	b = append(b, `],"next":`...)
	b = jsonview.AppendString(b, next)
	c.Data(http.StatusOK, "application/json", append(b, '}'))
	return nil
}
