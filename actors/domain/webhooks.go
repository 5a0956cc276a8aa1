package domain

import (
	"bytes"
	"encoding/binary"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Webhooks (API.md "Webhooks"): push delivery of the change stream. A
// webhook's spec and its cursor — the offset of the last event its receiver
// acknowledged — are committed state, so a new leader resumes delivery
// where the old one's last acknowledged batch ended: at least once, in
// order. The leader alone sends (actors/webhooks.go) and moves the cursor
// through the log.
//
// Webhook events produce no change-stream entry: the leader commits one
// cursor event per delivered batch, so a stream that showed them would feed
// itself — every delivery would make an event to deliver. They are log
// format BatchV4: a leader proposes them only once the committed format is
// at least 4, and a stamped batch carrying one is written as version 4.

// Limits of a webhook spec.
const (
	MaxWebhooks         = 256 // bounded: webhook ids are metric labels
	MaxWebhookURLLen    = 2048
	MinWebhookSecretLen = 32
	MaxWebhookSecretLen = 1024
	MaxWebhookTypes     = 32
)

// Webhook is one committed webhook.
type Webhook struct {
	ID             string
	URL            string
	Secret         string   // the HMAC key, never shown
	Types          []string // patterns: "*", "<group>.*" or an exact event type; empty = all
	ResourcePrefix string   // only changes of resources whose id starts with it; "" = all

	// Delivered is the committed cursor: every event up to it was
	// acknowledged (or skipped by the filters). It only moves forward,
	// except by a replay.
	Delivered uint64
	Paused    bool
	CreatedAt int64
	UpdatedAt int64
}

// WebhookOp is the payload of the webhook events.
type WebhookOp struct {
	// Webhook: for EvPutWebhook the spec (ID, URL, Secret, Types,
	// ResourcePrefix) and, for a new webhook, its first cursor in
	// Delivered, resolved by the leader from "start"; for the other events
	// only its ID.
	Webhook Webhook
	// From and To: EvAdvanceWebhook moves the cursor from From to To;
	// EvReplayWebhook sets it to To.
	From, To uint64
	// Paused is what EvPauseWebhook sets.
	Paused bool
}

// IsWebhookEvent reports whether t is one of the webhook events (log
// format BatchV4).
func (t EventType) IsWebhookEvent() bool { return t >= EvPutWebhook && t <= EvReplayWebhook }

// ValidateSpec checks the spec fields of w on their own: id, URL, secret,
// type patterns and resource prefix.
func (w *Webhook) ValidateSpec() error {
	if !ValidID(w.ID) {
		return invalidf("webhook id %q: want 1-%d of [A-Za-z0-9._:-]", w.ID, MaxIDLen)
	}
	if err := validWebhookURL(w.URL); err != nil {
		return err
	}
	if len(w.Secret) < MinWebhookSecretLen || len(w.Secret) > MaxWebhookSecretLen {
		return invalidf("secret must be %d to %d bytes, not %d", MinWebhookSecretLen, MaxWebhookSecretLen, len(w.Secret))
	}
	if len(w.Types) > MaxWebhookTypes {
		return invalidf("at most %d types", MaxWebhookTypes)
	}
	if _, err := ParseTypePatterns(w.Types); err != nil {
		return err
	}
	if w.ResourcePrefix != "" && !ValidID(w.ResourcePrefix) {
		return invalidf("resource_prefix %q: want characters of [A-Za-z0-9._:-]", w.ResourcePrefix)
	}
	return nil
}

func validWebhookURL(s string) error {
	if len(s) == 0 || len(s) > MaxWebhookURLLen {
		return invalidf("url must be 1 to %d bytes", MaxWebhookURLLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalidf("url %q: %v", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return invalidf("url %q: want http:// or https:// with a host, no user info and no fragment", s)
	}
	return nil
}

// TypeSet is a set of change types, one bit per ChangeType.
type TypeSet uint64

// Has reports whether t is in the set.
func (s TypeSet) Has(t ChangeType) bool { return s&(1<<t) != 0 }

// ParseTypePatterns turns type patterns into the set of change types they
// name: "*" is every type, "<group>.*" every type whose name starts with
// "<group>." (resource, limit, reservation), anything else an exact type
// name. No patterns is every type; a pattern that names no type is invalid.
func ParseTypePatterns(patterns []string) (TypeSet, error) {
	var all TypeSet
	for _, t := range ChangeTypes() {
		all |= 1 << t
	}
	if len(patterns) == 0 {
		return all, nil
	}
	var set TypeSet
	for _, p := range patterns {
		var hit TypeSet
		group, wild := strings.CutSuffix(p, ".*")
		for _, t := range ChangeTypes() {
			name := t.String()
			if p == "*" || name == p || wild && group != "" && strings.HasPrefix(name, group+".") {
				hit |= 1 << t
			}
		}
		if hit == 0 {
			return 0, invalidf("type %q names no event type (want \"*\", \"reservation.*\" or a name such as \"reservation.held\")", p)
		}
		set |= hit
	}
	return set, nil
}

// WebhookFilter decides which events a webhook is sent.
type WebhookFilter struct {
	types  TypeSet
	prefix []byte
}

// Filter returns the filter of w's types and resource prefix; w must have
// a valid spec.
func (w *Webhook) Filter() WebhookFilter {
	set, _ := ParseTypePatterns(w.Types)
	return WebhookFilter{types: set, prefix: []byte(w.ResourcePrefix)}
}

// Match reports whether an event of type t about resource resourceID passes.
func (f WebhookFilter) Match(t ChangeType, resourceID []byte) bool {
	return f.types.Has(t) && bytes.HasPrefix(resourceID, f.prefix)
}

func (s *State) applyWebhook(ev *Event) error {
	op := ev.Hook
	if op == nil {
		return invalidf("webhook event without payload")
	}
	id := op.Webhook.ID
	w, exists := s.webhooks[id]
	if ev.Type == EvPutWebhook {
		return s.applyPutWebhook(ev, w, exists)
	}
	if ev.Type == EvAdvanceWebhook {
		// A stale advance — the webhook was deleted, replayed or moved by
		// another leader's batch meanwhile — is a normal race, not a bug:
		// it changes nothing. The cursor moves only from where the sender
		// read it.
		if op.From >= op.To || op.To > s.eventHead {
			return invalidf("webhook %s: cursor advance %d -> %d with event head %d", id, op.From, op.To, s.eventHead)
		}
		if exists && w.Delivered == op.From {
			w.Delivered = op.To
		}
		return nil
	}
	if !exists {
		return wrapf(ErrNotFound, "webhook %s", id)
	}
	switch ev.Type {
	case EvDeleteWebhook:
		delete(s.webhooks, id)
		return nil
	case EvPauseWebhook:
		w.Paused = op.Paused
	case EvReplayWebhook:
		if op.To > s.eventHead {
			return invalidf("webhook %s: replay after %d, past the event head %d", id, op.To, s.eventHead)
		}
		w.Delivered = op.To
	default:
		return invalidf("unknown event type %d", ev.Type)
	}
	w.UpdatedAt = ev.At
	return nil
}

func (s *State) applyPutWebhook(ev *Event, w *Webhook, exists bool) error {
	spec := &ev.Hook.Webhook
	if err := spec.ValidateSpec(); err != nil {
		return err
	}
	if !exists {
		if len(s.webhooks) >= MaxWebhooks {
			return wrapf(ErrInvalidState, "at most %d webhooks", MaxWebhooks)
		}
		if spec.Delivered > s.eventHead {
			return invalidf("webhook %s starts after %d, past the event head %d", spec.ID, spec.Delivered, s.eventHead)
		}
		w = &Webhook{ID: spec.ID, Delivered: spec.Delivered, CreatedAt: ev.At}
		s.webhooks[spec.ID] = w
	}
	w.URL, w.Secret, w.ResourcePrefix = spec.URL, spec.Secret, spec.ResourcePrefix
	w.Types = slices.Clone(spec.Types)
	w.UpdatedAt = ev.At
	return nil
}

// Webhook returns the committed webhook id (its Types are shared: do not
// modify them).
func (s *State) Webhook(id string) (Webhook, bool) {
	w, ok := s.webhooks[id]
	if !ok {
		return Webhook{}, false
	}
	return *w, true
}

// WebhookCount is how many webhooks the state holds.
func (s *State) WebhookCount() int { return len(s.webhooks) }

// ListWebhooks calls fn for the webhooks with ids after `after`, in id
// order, until fn returns false.
func (s *State) ListWebhooks(after string, fn func(Webhook) bool) {
	for _, id := range s.webhookIDs() {
		if id > after && !fn(*s.webhooks[id]) {
			return
		}
	}
}

// EachWebhook calls fn for every webhook in id order (snapshots).
func (s *State) EachWebhook(fn func(Webhook) error) error {
	for _, id := range s.webhookIDs() {
		if err := fn(*s.webhooks[id]); err != nil {
			return err
		}
	}
	return nil
}

func (s *State) webhookIDs() []string {
	ids := make([]string, 0, len(s.webhooks))
	for id := range s.webhooks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// LoadWebhook adds a webhook while restoring a snapshot; false when one with
// its id is there already (a corrupt snapshot).
func (s *State) LoadWebhook(w Webhook) bool {
	if _, dup := s.webhooks[w.ID]; dup {
		return false
	}
	s.webhooks[w.ID] = &w
	return true
}

func (s *State) cloneWebhooks(c *State) {
	for id, w := range s.webhooks {
		cw := *w
		cw.Types = slices.Clone(w.Types)
		c.webhooks[id] = &cw
	}
}

// hashWebhooks adds the webhooks to a state hash, only when there are any:
// a state from before webhooks hashes as it did.
func (s *State) hashWebhooks(buf []byte, write func([]byte)) {
	if len(s.webhooks) == 0 {
		return
	}
	write(binary.AppendUvarint(buf[:0], uint64(len(s.webhooks))))
	_ = s.EachWebhook(func(w Webhook) error {
		buf = AppendWebhook(buf[:0], &w)
		write(buf)
		return nil
	})
}

// AppendWebhook encodes a webhook (events, snapshot records, hashes);
// DecodeWebhook reads it back.
func AppendWebhook(b []byte, w *Webhook) []byte {
	b = appendString(b, w.ID)
	b = appendString(b, w.URL)
	b = appendString(b, w.Secret)
	b = binary.AppendUvarint(b, uint64(len(w.Types)))
	for _, t := range w.Types {
		b = appendString(b, t)
	}
	b = appendString(b, w.ResourcePrefix)
	b = binary.AppendUvarint(b, w.Delivered)
	paused := byte(0)
	if w.Paused {
		paused = 1
	}
	b = append(b, paused)
	b = binary.AppendVarint(b, w.CreatedAt)
	return binary.AppendVarint(b, w.UpdatedAt)
}

// DecodeWebhook decodes a record made by AppendWebhook.
func DecodeWebhook(data []byte) (Webhook, error) { return decodeValue(data, (*decoder).webhook) }

func (d *decoder) webhook(w *Webhook) {
	w.ID = d.string()
	w.URL = d.string()
	w.Secret = d.string()
	if n := d.count(1); n > 0 {
		w.Types = make([]string, n)
		for i := range w.Types {
			w.Types[i] = d.string()
		}
	}
	w.ResourcePrefix = d.string()
	w.Delivered = d.uvarint()
	w.Paused = d.flag()
	w.CreatedAt = d.varint()
	w.UpdatedAt = d.varint()
}

// flag reads a byte that must be 0 or 1.
func (d *decoder) flag() bool {
	switch b := d.byte(); b {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("flag %d", b)
		return false
	}
}

// appendWebhookOp encodes the payload of webhook event t.
func appendWebhookOp(b []byte, t EventType, op *WebhookOp) []byte {
	if op == nil {
		op = &WebhookOp{}
	}
	switch t {
	case EvPutWebhook:
		return AppendWebhook(b, &op.Webhook)
	case EvAdvanceWebhook:
		b = appendString(b, op.Webhook.ID)
		b = binary.AppendUvarint(b, op.From)
		return binary.AppendUvarint(b, op.To)
	case EvReplayWebhook:
		return binary.AppendUvarint(appendString(b, op.Webhook.ID), op.To)
	case EvPauseWebhook:
		b = appendString(b, op.Webhook.ID)
		if op.Paused {
			return append(b, 1)
		}
		return append(b, 0)
	}
	return appendString(b, op.Webhook.ID) // EvDeleteWebhook
}

func (d *decoder) webhookOp(t EventType) *WebhookOp {
	op := new(WebhookOp)
	switch t {
	case EvPutWebhook:
		d.webhook(&op.Webhook)
	case EvAdvanceWebhook:
		op.Webhook.ID = d.string()
		op.From = d.uvarint()
		op.To = d.uvarint()
	case EvReplayWebhook:
		op.Webhook.ID = d.string()
		op.To = d.uvarint()
	case EvPauseWebhook:
		op.Webhook.ID = d.string()
		op.Paused = d.flag()
	default:
		op.Webhook.ID = d.string()
	}
	return op
}

// StartFrom says where a new webhook's cursor starts.
type StartFrom uint8

// Where a new webhook starts: after the newest committed event, before the
// oldest one kept, or after a given offset.
const (
	StartNow StartFrom = iota + 1
	StartEarliest
	StartAfter
)

// WebhookStart is the "start" of a new webhook, resolved by the leader to a
// concrete cursor when it creates it.
type WebhookStart struct {
	From  StartFrom
	After uint64 // StartAfter
}

// DeliveryState says how a webhook's delivery goes on the leader.
type DeliveryState uint8

// The delivery states of API.md.
const (
	DeliveryActive   DeliveryState = iota + 1 // sending, or caught up
	DeliveryRetrying                          // the last attempt failed; the next waits for its backoff
	DeliveryPaused                            // paused: nothing is sent
)

var deliveryNames = [...]string{DeliveryActive: "active", DeliveryRetrying: "retrying", DeliveryPaused: "paused"}

func (s DeliveryState) String() string {
	if int(s) < len(deliveryNames) && deliveryNames[s] != "" {
		return deliveryNames[s]
	}
	return "unknown"
}

// WebhookDelivery is the leader's own view of one webhook's delivery: not
// committed, gone with the leadership.
type WebhookDelivery struct {
	State         DeliveryState
	LastError     string // why the attempts fail, "" while they do not
	LastAttemptAt int64  // Unix ns of the last POST, 0 for none in this term
}
