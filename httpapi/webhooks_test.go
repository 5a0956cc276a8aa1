package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"allot/actors/domain"
)

// fakeWebhooks applies webhook events to the fake engine's state, with the
// engine's checks, and reports a delivery status that tests set.
type fakeWebhooks struct {
	f         *fakeEngine
	mu        sync.Mutex
	status    map[string]domain.WebhookDelivery
	lastStart domain.WebhookStart
}

func (h *fakeWebhooks) apply(ev domain.Event) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	ev.At = h.f.now
	return h.f.st.Apply(&ev)
}

func (h *fakeWebhooks) get(id string) (domain.Webhook, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if w, ok := h.f.st.Webhook(id); ok {
		return w, nil
	}
	return domain.Webhook{}, fmt.Errorf("webhook %s: %w", id, domain.ErrNotFound)
}

func (h *fakeWebhooks) PutWebhook(_ context.Context, w domain.Webhook, start domain.WebhookStart) (domain.Webhook, bool, error) {
	h.mu.Lock()
	h.lastStart = start
	h.mu.Unlock()
	_, err := h.get(w.ID)
	created := err != nil
	if created && start.From == domain.StartAfter {
		w.Delivered = start.After
	}
	if err := h.apply(domain.Event{Type: domain.EvPutWebhook, Hook: &domain.WebhookOp{Webhook: w}}); err != nil {
		return domain.Webhook{}, false, err
	}
	w, err = h.get(w.ID)
	return w, created, err
}

func (h *fakeWebhooks) DeleteWebhook(_ context.Context, id string) error {
	return h.apply(domain.Event{Type: domain.EvDeleteWebhook, Hook: &domain.WebhookOp{Webhook: domain.Webhook{ID: id}}})
}

func (h *fakeWebhooks) PauseWebhook(_ context.Context, id string, paused bool) (domain.Webhook, error) {
	if err := h.apply(domain.Event{Type: domain.EvPauseWebhook, Hook: &domain.WebhookOp{Webhook: domain.Webhook{ID: id}, Paused: paused}}); err != nil {
		return domain.Webhook{}, err
	}
	return h.get(id)
}

func (h *fakeWebhooks) ReplayWebhook(_ context.Context, id string, after uint64) (domain.Webhook, error) {
	if err := h.apply(domain.Event{Type: domain.EvReplayWebhook, Hook: &domain.WebhookOp{Webhook: domain.Webhook{ID: id}, To: after}}); err != nil {
		return domain.Webhook{}, err
	}
	return h.get(id)
}

func (h *fakeWebhooks) WebhookStatus(id string) (domain.WebhookDelivery, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.status[id]
	return st, ok
}

func newWebhookEnv(t *testing.T) (*testEnv, *fakeWebhooks) {
	var hooks *fakeWebhooks
	e := newEnv(t, func(c *Config) {
		f := c.Engine.(*fakeEngine)
		f.st.RaiseLogFormat(domain.BatchV4)
		hooks = &fakeWebhooks{f: f, status: map[string]domain.WebhookDelivery{}}
		c.Webhooks = hooks
	})
	return e, hooks
}

const testHookSecret = "0123456789abcdef0123456789abcdef"

func TestWebhookCRUD(t *testing.T) {
	e, hooks := newWebhookEnv(t)
	body := `{"url":"https://orders.example/in","secret":"` + testHookSecret + `","types":["reservation.*"],"resource_prefix":"flash-"}`
	var w webhookJSON
	e.do("PUT", "/v1/webhooks/orders", e.admin, body).want(t, http.StatusCreated, &w)
	if w.ID != "orders" || w.URL != "https://orders.example/in" || w.Types[0] != "reservation.*" || w.ResourcePrefix != "flash-" ||
		w.State != "active" || w.Delivered != 0 || w.LastAttemptAt != nil || w.CreatedAt == "" {
		t.Fatalf("created %+v", w)
	}
	if hooks.lastStart.From != domain.StartNow {
		t.Fatalf("default start %+v", hooks.lastStart)
	}
	r := e.do("GET", "/v1/webhooks/orders", e.admin, "")
	r.want(t, http.StatusOK, &w)
	if strings.Contains(string(r.body), testHookSecret) || strings.Contains(string(r.body), "secret") {
		t.Fatalf("the secret is shown: %s", r.body)
	}
	e.do("PUT", "/v1/webhooks/orders", e.admin, strings.Replace(body, "flash-", "room-", 1)).want(t, http.StatusOK, &w)
	if w.ResourcePrefix != "room-" {
		t.Fatalf("updated %+v", w)
	}

	// The leader's delivery status shows through.
	hooks.mu.Lock()
	hooks.status["orders"] = domain.WebhookDelivery{State: domain.DeliveryRetrying, LastError: "POST: 500", LastAttemptAt: testNow().UnixNano()}
	hooks.mu.Unlock()
	e.do("GET", "/v1/webhooks/orders", e.admin, "").want(t, http.StatusOK, &w)
	if w.State != "retrying" || w.LastError != "POST: 500" || w.LastAttemptAt == nil || *w.LastAttemptAt != "2026-11-21T11:00:00Z" {
		t.Fatalf("status %+v", w)
	}

	e.do("POST", "/v1/webhooks/orders/pause", e.admin, "").want(t, http.StatusOK, &w)
	if !w.Paused || w.State != "paused" {
		t.Fatalf("paused %+v", w)
	}
	e.do("POST", "/v1/webhooks/orders/resume", e.admin, "").want(t, http.StatusOK, &w)
	if w.Paused || w.State != "retrying" {
		t.Fatalf("resumed %+v", w)
	}
	e.do("POST", "/v1/webhooks/orders/replay", e.admin, `{"after":0}`).want(t, http.StatusOK, &w)
	e.do("POST", "/v1/webhooks/orders/replay", e.admin, `{}`).wantProblem(t, http.StatusBadRequest, "invalid_argument")
	e.do("POST", "/v1/webhooks/orders/replay", e.admin, `{"after":-1}`).wantProblem(t, http.StatusBadRequest, "invalid_argument")
	e.do("POST", "/v1/webhooks/orders/replay", e.admin, `{"after":5}`).wantProblem(t, http.StatusBadRequest, "invalid_argument") // past the head
	e.do("POST", "/v1/webhooks/nope/replay", e.admin, `{"after":0}`).wantProblem(t, http.StatusNotFound, "not_found")

	for _, id := range []string{"a", "b"} {
		e.do("PUT", "/v1/webhooks/"+id, e.admin, body).want(t, http.StatusCreated, nil)
	}
	var page webhookPage
	e.do("GET", "/v1/webhooks?limit=2", e.admin, "").want(t, http.StatusOK, &page)
	if len(page.Items) != 2 || page.Items[0].ID != "a" || page.Next != "b" {
		t.Fatalf("page %+v", page)
	}
	e.do("GET", "/v1/webhooks?after=b", e.admin, "").want(t, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "orders" || page.Next != "" {
		t.Fatalf("page %+v", page)
	}

	e.do("DELETE", "/v1/webhooks/orders", e.admin, "").want(t, http.StatusNoContent, nil)
	e.do("GET", "/v1/webhooks/orders", e.admin, "").wantProblem(t, http.StatusNotFound, "not_found")
	e.do("DELETE", "/v1/webhooks/orders", e.admin, "").wantProblem(t, http.StatusNotFound, "not_found")
}

func TestWebhookBodies(t *testing.T) {
	e, hooks := newWebhookEnv(t)
	ok := func(extra string) string {
		return `{"url":"https://h.example/x","secret":"` + testHookSecret + `"` + extra + `}`
	}
	for _, c := range []struct {
		name, body string
	}{
		{"short secret", `{"url":"https://h.example/x","secret":"too-short"}`},
		{"no url", `{"secret":"` + testHookSecret + `"}`},
		{"ftp url", `{"url":"ftp://h.example/x","secret":"` + testHookSecret + `"}`},
		{"no host", `{"url":"http:///x","secret":"` + testHookSecret + `"}`},
		{"relative url", `{"url":"/x","secret":"` + testHookSecret + `"}`},
		{"unknown field", ok(`,"headers":{}`)},
		{"duplicate key", ok(`,"url":"https://other.example/"`)},
		{"bad type", ok(`,"types":["orders.*"]`)},
		{"bad prefix", ok(`,"resource_prefix":"a/b"`)},
		{"bad start", ok(`,"start":"later"`)},
		{"negative start", ok(`,"start":-1`)},
		{"fractional start", ok(`,"start":1.5`)},
		{"empty body", ``},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.do("PUT", "/v1/webhooks/h", e.admin, c.body).wantProblem(t, http.StatusBadRequest, "invalid_argument")
		})
	}
	e.do("PUT", "/v1/webhooks/h", e.admin, ok(`,"start":"earliest"`)).want(t, http.StatusCreated, nil)
	if hooks.lastStart.From != domain.StartEarliest {
		t.Fatalf("start %+v", hooks.lastStart)
	}
	e.do("PUT", "/v1/webhooks/h2", e.admin, ok(`,"start":0`)).want(t, http.StatusCreated, nil)
	if hooks.lastStart != (domain.WebhookStart{From: domain.StartAfter, After: 0}) {
		t.Fatalf("start %+v", hooks.lastStart)
	}
	e.do("PUT", "/v1/webhooks/..", e.admin, ok("")).wantProblem(t, http.StatusBadRequest, "invalid_argument")
}

// TestWebhookRoles: webhooks are for admins; users and consumers may
// neither write nor read them (a webhook names where the events go).
func TestWebhookRoles(t *testing.T) {
	e, _ := newWebhookEnv(t)
	body := `{"url":"https://h.example/x","secret":"` + testHookSecret + `"}`
	consumer := e.token("downstream", RoleConsumer)
	for _, tok := range []string{e.alice, consumer} {
		e.do("PUT", "/v1/webhooks/h", tok, body).wantProblem(t, http.StatusForbidden, "permission_denied")
	}
	e.do("PUT", "/v1/webhooks/h", e.admin, body).want(t, http.StatusCreated, nil)
	for _, tok := range []string{e.alice, consumer} {
		e.do("GET", "/v1/webhooks/h", tok, "").wantProblem(t, http.StatusForbidden, "permission_denied")
		e.do("GET", "/v1/webhooks", tok, "").wantProblem(t, http.StatusForbidden, "permission_denied")
		e.do("POST", "/v1/webhooks/h/pause", tok, "").wantProblem(t, http.StatusForbidden, "permission_denied")
	}
	e.do("GET", "/v1/webhooks/h", "", "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
}
