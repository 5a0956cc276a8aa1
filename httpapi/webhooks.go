package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// Webhooks is what the webhook handlers need besides committed state;
// actors.Engine implements it on the leader. The writes honour ctx like
// Engine's and answer with the webhook as committed.
type Webhooks interface {
	// PutWebhook creates (created=true) or updates a webhook from the spec
	// fields of w; start places a new webhook's cursor.
	PutWebhook(ctx context.Context, w domain.Webhook, start domain.WebhookStart) (domain.Webhook, bool, error)
	DeleteWebhook(ctx context.Context, id string) error
	// PauseWebhook pauses (true) or resumes delivery.
	PauseWebhook(ctx context.Context, id string, paused bool) (domain.Webhook, error)
	// ReplayWebhook sets the cursor: delivery goes on after offset after.
	ReplayWebhook(ctx context.Context, id string, after uint64) (domain.Webhook, error)
	// WebhookStatus is this node's delivery status of a webhook; false on
	// a node that does not deliver it (a follower).
	WebhookStatus(id string) (domain.WebhookDelivery, bool)
}

// webhookRoutes registers the webhook API: admins only, writes on the
// leader, reads from the leader (which alone knows how delivery goes)
// unless ?consistency=stale.
func (s *Server) webhookRoutes() {
	if s.cfg.Webhooks == nil {
		return
	}
	write := func(h authedHandler) gin.HandlerFunc { return s.authed(s.viaLeader(onLeader, h), true) }
	read := func(h authedHandler) gin.HandlerFunc { return s.authed(s.viaLeader(leaderRead, h), true) }
	s.handle(http.MethodPut, "/v1/webhooks/:id", write(s.putWebhook))
	s.handle(http.MethodGet, "/v1/webhooks/:id", read(s.getWebhook))
	s.handle(http.MethodDelete, "/v1/webhooks/:id", write(s.deleteWebhook))
	s.handle(http.MethodGet, "/v1/webhooks", read(s.listWebhooks))
	s.handle(http.MethodPost, "/v1/webhooks/:id/pause", write(s.pauseWebhook(true)))
	s.handle(http.MethodPost, "/v1/webhooks/:id/resume", write(s.pauseWebhook(false)))
	s.handle(http.MethodPost, "/v1/webhooks/:id/replay", write(s.replayWebhook))
}

// webhookBody is the body of PUT /v1/webhooks/{id}; a PUT replaces the
// whole spec.
type webhookBody struct {
	URL            string          `json:"url"`
	Secret         string          `json:"secret"`
	Types          []string        `json:"types"`
	ResourcePrefix string          `json:"resource_prefix"`
	Start          json.RawMessage `json:"start"` // "now" (default), "earliest" or an offset
}

// parseStart reads "start".
func parseStart(raw json.RawMessage) (domain.WebhookStart, error) {
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "", "null", `"now"`:
		return domain.WebhookStart{From: domain.StartNow}, nil
	case `"earliest"`:
		return domain.WebhookStart{From: domain.StartEarliest}, nil
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return domain.WebhookStart{}, fmt.Errorf(`start must be "now", "earliest" or an offset (a whole number >= 0), not %s: %w`, raw, domain.ErrInvalidArgument)
	}
	return domain.WebhookStart{From: domain.StartAfter, After: n}, nil
}

// webhookJSON is a webhook as the API shows it: the spec without the
// secret, the committed cursor, the newest event and how delivery goes.
type webhookJSON struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Types          []string `json:"types"`
	ResourcePrefix string   `json:"resource_prefix"`
	Paused         bool     `json:"paused"`
	Delivered      uint64   `json:"delivered"`
	Head           uint64   `json:"head"`
	State          string   `json:"state"`
	LastError      string   `json:"last_error"`
	LastAttemptAt  *string  `json:"last_attempt_at"`
	CreatedAt      string   `json:"created_at"`
	UpdatedAt      string   `json:"updated_at"`
}

// renderWebhook copies w; the delivery status is this node's when it
// delivers the webhook, else what committed state says (paused or active).
func (s *Server) renderWebhook(w domain.Webhook, head uint64) webhookJSON {
	out := webhookJSON{
		ID: w.ID, URL: w.URL, Types: append([]string{}, w.Types...), ResourcePrefix: w.ResourcePrefix,
		Paused: w.Paused, Delivered: w.Delivered, Head: head, State: domain.DeliveryActive.String(),
		CreatedAt: domain.FormatTime(w.CreatedAt), UpdatedAt: domain.FormatTime(w.UpdatedAt),
	}
	if w.Paused {
		out.State = domain.DeliveryPaused.String()
	}
	if st, ok := s.cfg.Webhooks.WebhookStatus(w.ID); ok {
		if !w.Paused { // committed state wins over a deliverer that has not seen the pause yet
			out.State = st.State.String()
		}
		out.LastError = st.LastError
		if st.LastAttemptAt != 0 {
			at := domain.FormatTime(st.LastAttemptAt)
			out.LastAttemptAt = &at
		}
	}
	return out
}

// webhookID reads and checks the :id path parameter.
func webhookID(c *gin.Context) (string, error) {
	id := c.Param("id")
	if !validPathID(id) {
		return "", fmt.Errorf("webhook id %q: want 1-%d characters of [A-Za-z0-9._:-], not only dots: %w", id, domain.MaxIDLen, domain.ErrInvalidArgument)
	}
	return id, nil
}

// decodeBody decodes the required JSON body into v.
func (s *Server) decodeBody(c *gin.Context, what string, v any) error {
	buf, err := s.readBody(c)
	if err != nil {
		return err
	}
	defer s.putBuf(buf)
	if buf.Len() == 0 {
		return fmt.Errorf("a %s body is required: %w", what, domain.ErrInvalidArgument)
	}
	return decodeJSON(buf.Bytes(), v)
}

func (s *Server) putWebhook(c *gin.Context, _ domain.Principal) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	var body webhookBody
	if err := s.decodeBody(c, "webhook", &body); err != nil {
		return err
	}
	start, err := parseStart(body.Start)
	if err != nil {
		return err
	}
	spec := domain.Webhook{ID: id, URL: body.URL, Secret: body.Secret, Types: body.Types, ResourcePrefix: body.ResourcePrefix}
	if err := spec.ValidateSpec(); err != nil {
		return err
	}
	ctx := s.callContext()
	w, created, err := s.cfg.Webhooks.PutWebhook(ctx, spec, start)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return s.answerWebhook(c, status, w)
}

// answerWebhook answers with w and the committed event head.
func (s *Server) answerWebhook(c *gin.Context, status int, w domain.Webhook) error {
	var head uint64
	ctx := s.callContext()
	_ = s.cfg.Reader.Read(ctx, domain.ReadStale, func(st *domain.State) error {
		head = st.EventHead()
		return nil
	})
	return s.writeJSON(c, status, s.renderWebhook(w, head))
}

func (s *Server) getWebhook(c *gin.Context, _ domain.Principal) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	var w domain.Webhook
	var head uint64
	err = s.read(c, func(st *domain.State) error {
		var ok bool
		if w, ok = st.Webhook(id); !ok {
			return fmt.Errorf("webhook %s: %w", id, domain.ErrNotFound)
		}
		w.Types = append([]string(nil), w.Types...)
		head = st.EventHead()
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusOK, s.renderWebhook(w, head))
}

type webhookPage struct {
	Items []webhookJSON `json:"items"`
	Next  string        `json:"next"`
}

func (s *Server) listWebhooks(c *gin.Context, _ domain.Principal) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	after, err := cursor(c)
	if err != nil {
		return err
	}
	var hooks []domain.Webhook
	var head uint64
	next := ""
	err = s.read(c, func(st *domain.State) error {
		head = st.EventHead()
		st.ListWebhooks(after, func(w domain.Webhook) bool {
			if len(hooks) == limit {
				next = hooks[limit-1].ID
				return false
			}
			w.Types = append([]string(nil), w.Types...)
			hooks = append(hooks, w)
			return true
		})
		return nil
	})
	if err != nil {
		return err
	}
	page := webhookPage{Items: make([]webhookJSON, 0, len(hooks)), Next: next}
	for _, w := range hooks {
		page.Items = append(page.Items, s.renderWebhook(w, head))
	}
	return s.writeJSON(c, http.StatusOK, page)
}

func (s *Server) deleteWebhook(c *gin.Context, _ domain.Principal) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	ctx := s.callContext()
	if err := s.cfg.Webhooks.DeleteWebhook(ctx, id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (s *Server) pauseWebhook(paused bool) authedHandler {
	return func(c *gin.Context, _ domain.Principal) error {
		id, err := webhookID(c)
		if err != nil {
			return err
		}
		ctx := s.callContext()
		w, err := s.cfg.Webhooks.PauseWebhook(ctx, id, paused)
		if err != nil {
			return err
		}
		return s.answerWebhook(c, http.StatusOK, w)
	}
}

func (s *Server) replayWebhook(c *gin.Context, _ domain.Principal) error {
	id, err := webhookID(c)
	if err != nil {
		return err
	}
	var body struct {
		After *uint64 `json:"after"`
	}
	if err := s.decodeBody(c, "replay", &body); err != nil {
		return err
	}
	if body.After == nil {
		return fmt.Errorf(`replay needs "after": the offset delivery goes on after: %w`, domain.ErrInvalidArgument)
	}
	ctx := s.callContext()
	w, err := s.cfg.Webhooks.ReplayWebhook(ctx, id, *body.After)
	if err != nil {
		return err
	}
	return s.answerWebhook(c, http.StatusOK, w)
}
