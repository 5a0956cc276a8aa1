package httpapi

import (
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// Limit groups (API.md "Limit groups"): PUT, GET, list and DELETE of
// /v1/limits. The engine (a limit actor on the leader) decides changes;
// reads come from committed state like every other read.

// limitBody is the body of PUT /v1/limits/{id}: the whole spec.
type limitBody struct {
	PerUser    int64             `json:"per_user"`
	Capacity   int64             `json:"capacity"`
	Attributes map[string]string `json:"attributes"`
}

// limitJSON is a limit as the API shows it: its spec, its counts and its
// members; UserTaken only when asked for a user.
type limitJSON struct {
	ID         string            `json:"id"`
	PerUser    int64             `json:"per_user"`
	Capacity   int64             `json:"capacity"`
	Attributes map[string]string `json:"attributes"`
	Taken      int64             `json:"taken"`
	Resources  []string          `json:"resources"`
	User       string            `json:"user,omitempty"`
	UserTaken  *int64            `json:"user_taken,omitempty"`
	CreatedAt  string            `json:"created_at"`
	UpdatedAt  string            `json:"updated_at"`
}

type limitPage struct {
	Items []limitJSON `json:"items"`
	Next  string      `json:"next"`
}

// renderLimit copies l (and, when user is set, that user's count) into its
// JSON form.
func renderLimit(l *domain.Limit, user string) limitJSON {
	out := limitJSON{
		ID: l.ID, PerUser: l.Spec.PerUser, Capacity: l.Spec.Capacity,
		Attributes: maps.Clone(l.Spec.Attributes), Taken: l.Taken, Resources: slices.Clone(l.Members()),
		CreatedAt: domain.FormatTime(l.CreatedAt), UpdatedAt: domain.FormatTime(l.UpdatedAt),
	}
	if out.Attributes == nil {
		out.Attributes = map[string]string{}
	}
	if out.Resources == nil {
		out.Resources = []string{}
	}
	if user != "" {
		n := l.UserTaken[user]
		out.User, out.UserTaken = user, &n
	}
	return out
}

// limitID reads and checks the :id path parameter.
func limitID(c *gin.Context) (string, error) {
	id := c.Param("id")
	if !validPathID(id) {
		return "", fmt.Errorf("limit id %q: want 1-%d characters of [A-Za-z0-9._:-], not only dots: %w", id, domain.MaxIDLen, domain.ErrInvalidArgument)
	}
	return id, nil
}

func (s *Server) putLimit(c *gin.Context, _ domain.Principal) error {
	id, err := limitID(c)
	if err != nil {
		return err
	}
	buf, err := s.readBody(c)
	if err != nil {
		return err
	}
	var body limitBody
	if buf.Len() == 0 {
		err = fmt.Errorf("a limit body is required: %w", domain.ErrInvalidArgument)
	} else {
		err = decodeJSON(buf.Bytes(), &body)
	}
	s.putBuf(buf)
	if err != nil {
		return err
	}
	spec := domain.LimitSpec{PerUser: body.PerUser, Capacity: body.Capacity, Attributes: body.Attributes}
	if err := spec.Validate(); err != nil {
		return err
	}
	ctx := s.callContext()
	l, created, err := s.cfg.Engine.PutLimit(ctx, id, spec)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return s.writeJSON(c, status, renderLimit(l, ""))
}

func (s *Server) deleteLimit(c *gin.Context, _ domain.Principal) error {
	id, err := limitID(c)
	if err != nil {
		return err
	}
	ctx := s.callContext()
	if err := s.cfg.Engine.DeleteLimit(ctx, id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// getLimit serves admins and consumers, and a user asking for its own
// count (?user=<itself>): enough to show "you have booked today already"
// without showing anyone else's.
func (s *Server) getLimit(c *gin.Context, p domain.Principal) error {
	id, err := limitID(c)
	if err != nil {
		return err
	}
	user := c.Query("user")
	if len(user) > domain.MaxUserLen {
		return fmt.Errorf("user is at most %d bytes: %w", domain.MaxUserLen, domain.ErrInvalidArgument)
	}
	if !p.Admin && !p.ReadOnly && (user == "" || user != p.User) {
		return fmt.Errorf("a user may read a limit only with user=<itself>: %w", domain.ErrPermissionDenied)
	}
	var out limitJSON
	err = s.read(c, func(st *domain.State) error {
		l, ok := st.Limit(id)
		if !ok {
			return fmt.Errorf("limit %s: %w", id, domain.ErrNotFound)
		}
		out = renderLimit(l, user)
		return nil
	})
	if err != nil {
		return err
	}
	if !p.Admin && !p.ReadOnly {
		out.Resources = []string{} // which resources share a quota is the operator's business
	}
	return s.writeJSON(c, http.StatusOK, out)
}

func (s *Server) listLimits(c *gin.Context, p domain.Principal) error {
	if !p.Admin && !p.ReadOnly {
		return fmt.Errorf("listing limits is for admins and consumers: %w", domain.ErrPermissionDenied)
	}
	prefix := c.Query("prefix")
	if prefix != "" && !domain.ValidID(prefix) {
		return fmt.Errorf("prefix %q: want characters of [A-Za-z0-9._:-]: %w", prefix, domain.ErrInvalidArgument)
	}
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	after, err := cursor(c)
	if err != nil {
		return err
	}
	page := limitPage{Items: make([]limitJSON, 0, min(limit, 16))}
	err = s.read(c, func(st *domain.State) error {
		st.ListLimits(prefix, after, func(l *domain.Limit) bool {
			if len(page.Items) == limit {
				page.Next = page.Items[limit-1].ID
				return false
			}
			page.Items = append(page.Items, renderLimit(l, ""))
			return true
		})
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusOK, page)
}
