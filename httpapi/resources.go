package httpapi

import (
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

const (
	// defaultHoldSeconds is hold_seconds when a PUT leaves it out.
	defaultHoldSeconds = 900
	// maxNightsShown bounds the nights one GET of a room renders.
	maxNightsShown = 366
)

// resourceBody is the body of PUT /v1/resources/{id}. A PUT replaces the
// whole spec: a field left out takes its default, not its previous value.
type resourceBody struct {
	Kind           string             `json:"kind"`
	Capacity       int64              `json:"capacity"`
	Inventory      []inventoryRowJSON `json:"inventory"`
	PerUserLimit   *int64             `json:"per_user_limit"` // nil: 1 for voucher and slot, 0 for room
	OpensAt        string             `json:"opens_at"`
	ClosesAt       string             `json:"closes_at"`
	HoldSeconds    *int64             `json:"hold_seconds"` // nil: defaultHoldSeconds
	CancelDeadline string             `json:"cancel_deadline"`
	Attributes     map[string]string  `json:"attributes"`
	Limits         []string           `json:"limits"` // limit groups, in any order
}

type inventoryRowJSON struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Rooms int64  `json:"rooms"`
}

// spec turns the body into a validated domain.Spec.
func (b *resourceBody) spec() (domain.Spec, error) {
	kind, err := domain.ParseKind(b.Kind)
	if err != nil {
		return domain.Spec{}, err
	}
	sp := domain.Spec{
		Kind:        kind,
		Capacity:    b.Capacity,
		HoldSeconds: defaultHoldSeconds,
		Attributes:  b.Attributes,
	}
	if len(b.Limits) > 0 {
		sp.Limits = slices.Sorted(slices.Values(b.Limits))
		if len(slices.Compact(slices.Clone(sp.Limits))) != len(sp.Limits) {
			return domain.Spec{}, fmt.Errorf("limits names a limit twice: %w", domain.ErrInvalidArgument)
		}
	}
	if b.PerUserLimit != nil {
		sp.PerUserLimit = *b.PerUserLimit
	} else if kind != domain.KindRoom {
		sp.PerUserLimit = 1
	}
	if b.HoldSeconds != nil {
		sp.HoldSeconds = *b.HoldSeconds
	}
	if len(b.Inventory) > domain.MaxInventoryRows {
		return domain.Spec{}, fmt.Errorf("at most %d inventory rows: %w", domain.MaxInventoryRows, domain.ErrInvalidArgument)
	}
	for i, row := range b.Inventory {
		from, err := parseDay(fmt.Sprintf("inventory[%d].from", i), row.From)
		if err != nil {
			return domain.Spec{}, err
		}
		to, err := parseDay(fmt.Sprintf("inventory[%d].to", i), row.To)
		if err != nil {
			return domain.Spec{}, err
		}
		sp.Inventory = append(sp.Inventory, domain.InventoryRow{From: from, To: to, Rooms: row.Rooms})
	}
	if sp.OpensAt, err = parseTime("opens_at", b.OpensAt); err != nil {
		return domain.Spec{}, err
	}
	if sp.ClosesAt, err = parseTime("closes_at", b.ClosesAt); err != nil {
		return domain.Spec{}, err
	}
	if sp.CancelDeadline, err = parseTime("cancel_deadline", b.CancelDeadline); err != nil {
		return domain.Spec{}, err
	}
	return sp, sp.Validate()
}

// resourceID reads and checks the :id path parameter.
func resourceID(c *gin.Context) (string, error) {
	id := c.Param("id")
	if !validPathID(id) {
		return "", fmt.Errorf("resource id %q: want 1-%d characters of [A-Za-z0-9._:-], not only dots: %w", id, domain.MaxIDLen, domain.ErrInvalidArgument)
	}
	return id, nil
}

func (s *Server) putResource(c *gin.Context, _ domain.Principal) error {
	id, err := resourceID(c)
	if err != nil {
		return err
	}
	buf, err := s.readBody(c)
	if err != nil {
		return err
	}
	var body resourceBody
	if buf.Len() == 0 {
		err = fmt.Errorf("a resource body is required: %w", domain.ErrInvalidArgument)
	} else {
		err = decodeJSON(buf.Bytes(), &body)
	}
	s.putBuf(buf)
	if err != nil {
		return err
	}
	spec, err := body.spec()
	if err != nil {
		return err
	}
	ctx := s.callContext()
	r, created, err := s.cfg.Engine.PutResource(ctx, id, spec)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return s.writeJSON(c, status, renderResource(r, defaultNights(r), true))
}

func (s *Server) deleteResource(c *gin.Context, _ domain.Principal) error {
	id, err := resourceID(c)
	if err != nil {
		return err
	}
	ctx := s.callContext()
	if err := s.cfg.Engine.DeleteResource(ctx, id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (s *Server) getResource(c *gin.Context, _ domain.Principal) error {
	id, err := resourceID(c)
	if err != nil {
		return err
	}
	q, err := parseNightQuery(c)
	if err != nil {
		return err
	}
	var out resourceJSON
	err = s.read(c, func(st *domain.State) error {
		r, ok := st.Resource(id)
		if !ok {
			return fmt.Errorf("resource %s: %w", id, domain.ErrNotFound)
		}
		var rng nightRange
		if r.Spec.Kind == domain.KindRoom {
			var err error
			if rng.from, rng.to, err = q.resolve(r); err != nil {
				return err
			}
		}
		out = renderResource(r, rng, true)
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusOK, out)
}

func (s *Server) listResources(c *gin.Context, _ domain.Principal) error {
	var kind domain.Kind
	if k := c.Query("kind"); k != "" {
		var err error
		if kind, err = domain.ParseKind(k); err != nil {
			return err
		}
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
	page := resourcePage{Items: make([]resourceJSON, 0, min(limit, 16))}
	err = s.read(c, func(st *domain.State) error {
		st.ListResources(prefix, after, func(r *domain.Resource) bool {
			if kind != 0 && r.Spec.Kind != kind {
				return true
			}
			if len(page.Items) == limit {
				page.Next = page.Items[limit-1].ID
				return false
			}
			page.Items = append(page.Items, renderResource(r, nightRange{}, false))
			return true
		})
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusOK, page)
}

type resourcePage struct {
	Items []resourceJSON `json:"items"`
	Next  string         `json:"next"`
}

// resourceJSON is a resource as the API shows it: the spec as stored plus
// live counts. It holds copies only, so it outlives the Reader callback.
type resourceJSON struct {
	ID             string             `json:"id"`
	Kind           string             `json:"kind"`
	Capacity       int64              `json:"capacity"`
	Inventory      []inventoryRowJSON `json:"inventory"`
	PerUserLimit   int64              `json:"per_user_limit"`
	OpensAt        string             `json:"opens_at,omitempty"`
	ClosesAt       string             `json:"closes_at,omitempty"`
	HoldSeconds    int64              `json:"hold_seconds"`
	CancelDeadline string             `json:"cancel_deadline,omitempty"`
	Attributes     map[string]string  `json:"attributes"`
	Limits         []string           `json:"limits"`
	CreatedAt      string             `json:"created_at"`
	UpdatedAt      string             `json:"updated_at"`

	// Voucher and slot.
	Available *int64 `json:"available,omitempty"`
	Held      *int64 `json:"held,omitempty"`
	Confirmed *int64 `json:"confirmed,omitempty"`

	// Room: a map[string]nightJSON, set (possibly empty) when asked for.
	Nights any `json:"nights,omitempty"`
}

type nightJSON struct {
	Rooms     int32 `json:"rooms"`
	Available int32 `json:"available"`
	Held      int32 `json:"held"`
	Confirmed int32 `json:"confirmed"`
}

// renderResource copies r into its JSON form; withNights adds the room
// nights of rng.
func renderResource(r *domain.Resource, rng nightRange, withNights bool) resourceJSON {
	sp := &r.Spec
	out := resourceJSON{
		ID:           r.ID,
		Kind:         sp.Kind.String(),
		Capacity:     sp.Capacity,
		Inventory:    make([]inventoryRowJSON, len(sp.Inventory)),
		PerUserLimit: sp.PerUserLimit,
		HoldSeconds:  sp.HoldSeconds,
		Attributes:   maps.Clone(sp.Attributes),
		Limits:       append([]string{}, sp.Limits...),
		CreatedAt:    domain.FormatTime(r.CreatedAt),
		UpdatedAt:    domain.FormatTime(r.UpdatedAt),
	}
	if out.Attributes == nil {
		out.Attributes = map[string]string{}
	}
	for i, row := range sp.Inventory {
		out.Inventory[i] = inventoryRowJSON{From: row.From.String(), To: row.To.String(), Rooms: row.Rooms}
	}
	if sp.OpensAt != 0 {
		out.OpensAt = domain.FormatTime(sp.OpensAt)
	}
	if sp.ClosesAt != 0 {
		out.ClosesAt = domain.FormatTime(sp.ClosesAt)
	}
	if sp.CancelDeadline != 0 {
		out.CancelDeadline = domain.FormatTime(sp.CancelDeadline)
	}
	if sp.Kind != domain.KindRoom {
		avail, held, conf := r.Available(), r.Held, r.Confirmed
		out.Available, out.Held, out.Confirmed = &avail, &held, &conf
		return out
	}
	if withNights {
		nights := make(map[string]nightJSON, rng.to-rng.from)
		for d := rng.from; d < rng.to; d++ {
			n := r.Night(d)
			nights[d.String()] = nightJSON{Rooms: n.Rooms, Available: n.Available(), Held: n.Held, Confirmed: n.Confirmed}
		}
		out.Nights = nights
	}
	return out
}

// nightRange is the nights [from, to) of a room resource to show.
type nightRange struct{ from, to domain.Day }

// defaultNights is the range a GET without from/to shows.
func defaultNights(r *domain.Resource) nightRange {
	from, to, _ := nightQuery{}.resolve(r)
	return nightRange{from, to}
}

// nightQuery is ?from=&to= of GET /v1/resources/{id}.
type nightQuery struct {
	from, to       domain.Day
	hasFrom, hasTo bool
}

func parseNightQuery(c *gin.Context) (nightQuery, error) {
	var q nightQuery
	var err error
	if s, ok := c.GetQuery("from"); ok {
		if q.from, err = parseDay("from", s); err != nil {
			return q, err
		}
		q.hasFrom = true
	}
	if s, ok := c.GetQuery("to"); ok {
		if q.to, err = parseDay("to", s); err != nil {
			return q, err
		}
		q.hasTo = true
	}
	if q.hasFrom && q.hasTo && q.to <= q.from {
		return q, fmt.Errorf("to must be after from: %w", domain.ErrInvalidArgument)
	}
	return q, nil
}

// resolve fills in the defaults for room r: from is the first night of the
// inventory, to the end of the inventory but at most maxNightsShown after
// from. A range of more nights than that is invalid_argument.
func (q nightQuery) resolve(r *domain.Resource) (from, to domain.Day, err error) {
	base, end := r.NightBase, r.NightBase+domain.Day(len(r.Nights))
	from, to = base, min(end, base+maxNightsShown)
	if q.hasFrom {
		from, to = q.from, min(end, q.from+maxNightsShown)
	}
	if q.hasTo {
		to = q.to
	}
	if to < from {
		to = from // a defaulted end before an explicit start: nothing to show
	}
	if to-from > maxNightsShown {
		return 0, 0, fmt.Errorf("at most %d nights per request, pass from and to: %w", maxNightsShown, domain.ErrInvalidArgument)
	}
	return from, to, nil
}
