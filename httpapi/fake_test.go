package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

// testNow is the fake engine's clock at start: all times in tests are
// relative to it.
func testNow() time.Time { return time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC) }

// fakeEngine is an in-memory Engine and Reader on a domain.State, deciding
// with the real domain rules. hook, when set, runs first in every call and
// its error (if any) is returned instead.
type fakeEngine struct {
	mu       sync.Mutex
	st       *domain.State
	now      int64
	seq      int
	hook     func(ctx context.Context, op string) error
	readErr  error
	lastRead domain.Consistency
	lastRes  domain.ReserveCommand
	lastTr   domain.TransitionCommand
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{st: domain.NewState(), now: testNow().UnixNano()}
}

func (f *fakeEngine) setHook(h func(ctx context.Context, op string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func (f *fakeEngine) setReadErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readErr = err
}

func (f *fakeEngine) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now += int64(d)
}

func (f *fakeEngine) runHook(ctx context.Context, op string) error {
	f.mu.Lock()
	h := f.hook
	f.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(ctx, op)
}

func (f *fakeEngine) PutResource(ctx context.Context, id string, spec domain.Spec) (*domain.Resource, bool, error) {
	if err := f.runHook(ctx, "put"); err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, existed := f.st.Resource(id)
	if err := f.st.Apply(&domain.Event{Type: domain.EvPutResource, At: f.now, ResourceID: id, Spec: spec}); err != nil {
		return nil, false, err
	}
	r, _ := f.st.Resource(id)
	return r.Clone(), !existed, nil
}

func (f *fakeEngine) DeleteResource(ctx context.Context, id string) error {
	if err := f.runHook(ctx, "delete"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Apply(&domain.Event{Type: domain.EvDeleteResource, At: f.now, ResourceID: id})
}

func (f *fakeEngine) PutLimit(ctx context.Context, id string, spec domain.LimitSpec) (*domain.Limit, bool, error) {
	if err := f.runHook(ctx, "put-limit"); err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, existed := f.st.Limit(id)
	if err := f.st.Apply(&domain.Event{Type: domain.EvPutLimit, At: f.now, Limit: &domain.LimitOp{ID: id, Spec: spec}}); err != nil {
		return nil, false, err
	}
	l, _ := f.st.Limit(id)
	return l.Clone(), !existed, nil
}

func (f *fakeEngine) DeleteLimit(ctx context.Context, id string) error {
	if err := f.runHook(ctx, "delete-limit"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Apply(&domain.Event{Type: domain.EvDeleteLimit, At: f.now, Limit: &domain.LimitOp{ID: id}})
}

// replay answers from a stored idempotency record, or says the key was
// used for another request.
func (f *fakeEngine) replay(user string, k *domain.IdemKey) (domain.Outcome, bool, error) {
	if k == nil {
		return domain.Outcome{}, false, nil
	}
	rec, ok := f.st.Idem(user, k.Key)
	if !ok {
		return domain.Outcome{}, false, nil
	}
	if rec.Fingerprint != k.Fingerprint {
		return domain.Outcome{}, true, fmt.Errorf("key %q: %w", k.Key, domain.ErrIdempotencyKeyReused)
	}
	return domain.Outcome{Code: rec.Code, Reservation: rec.Reservation, Replayed: true}, true, nil
}

func (f *fakeEngine) idemRecord(user string, k *domain.IdemKey, code int, res domain.Reservation) *domain.IdemRecord {
	if k == nil {
		return nil
	}
	return &domain.IdemRecord{User: user, Key: k.Key, Fingerprint: k.Fingerprint, Code: code, Reservation: res, CreatedAt: f.now}
}

func (f *fakeEngine) Reserve(ctx context.Context, cmd domain.ReserveCommand) (domain.Outcome, error) {
	if err := f.runHook(ctx, "reserve"); err != nil {
		return domain.Outcome{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastRes = cmd
	if out, done, err := f.replay(cmd.Caller.User, cmd.Idem); done {
		return out, err
	}
	r, ok := f.st.Resource(cmd.ResourceID)
	if !ok {
		return domain.Outcome{}, fmt.Errorf("resource %s: %w", cmd.ResourceID, domain.ErrNotFound)
	}
	f.seq++
	res, err := r.DecideReserve(cmd.Request, fmt.Sprintf("r%04d", f.seq), f.now)
	if err != nil {
		return domain.Outcome{}, err
	}
	ev := domain.Event{Type: domain.EvReserve, At: f.now, ResourceID: r.ID, Reservation: res,
		Idem: f.idemRecord(cmd.Caller.User, cmd.Idem, http.StatusCreated, res)}
	if err := f.st.Apply(&ev); err != nil {
		return domain.Outcome{}, err
	}
	return domain.Outcome{Code: http.StatusCreated, Reservation: res}, nil
}

func (f *fakeEngine) Transition(ctx context.Context, cmd domain.TransitionCommand) (domain.Outcome, error) {
	if err := f.runHook(ctx, "transition"); err != nil {
		return domain.Outcome{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastTr = cmd
	res, ok := f.st.Reservation(cmd.ReservationID)
	if !ok {
		return domain.Outcome{}, fmt.Errorf("reservation %s: %w", cmd.ReservationID, domain.ErrNotFound)
	}
	if !cmd.Caller.CanAccess(res.User) {
		return domain.Outcome{}, fmt.Errorf("reservation %s: %w", res.ID, domain.ErrPermissionDenied)
	}
	if out, done, err := f.replay(cmd.Caller.User, cmd.Idem); done {
		return out, err
	}
	r, ok := f.st.Resource(res.ResourceID)
	if !ok { // orphaned by a delete: answered from the reservation, as actors.Engine does
		if res.Status != cmd.To {
			return domain.Outcome{}, fmt.Errorf("reservation %s: resource deleted: %w", res.ID, domain.ErrInvalidState)
		}
		return domain.Outcome{Code: http.StatusOK, Reservation: res}, nil
	}
	noop, err := r.CheckTransition(&res, cmd.To, f.now)
	if err != nil || noop {
		return domain.Outcome{Code: http.StatusOK, Reservation: res}, err
	}
	next := res
	r.Clone().ApplyTransition(&next, cmd.To, f.now)
	ev := domain.Event{Type: domain.EvTransition, At: f.now, ResourceID: r.ID, ReservationID: res.ID, To: cmd.To,
		Idem: f.idemRecord(cmd.Caller.User, cmd.Idem, http.StatusOK, next)}
	if err := f.st.Apply(&ev); err != nil {
		return domain.Outcome{}, err
	}
	res, _ = f.st.Reservation(res.ID)
	return domain.Outcome{Code: http.StatusOK, Reservation: res}, nil
}

func (f *fakeEngine) Read(ctx context.Context, c domain.Consistency, fn func(*domain.State) error) error {
	if err := f.runHook(ctx, "read"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastRead = c
	if f.readErr != nil {
		return f.readErr
	}
	return fn(f.st)
}

// reset replaces the state with a copy of st (the clock goes back to
// testNow), so that every fuzz input starts from the same state.
func (f *fakeEngine) reset(st *domain.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st, f.now, f.seq = st.Clone(), testNow().UnixNano(), 0
}

// stateHash is the digest of the fake's state.
func (f *fakeEngine) stateHash() [32]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Hash()
}

func (f *fakeEngine) lastReserve() domain.ReserveCommand {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastRes
}

func (f *fakeEngine) lastConsistency() domain.Consistency {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastRead
}

// fakeCluster is a Cluster with a settable readiness and leader, which
// records membership changes.
type fakeCluster struct {
	mu       sync.Mutex
	notReady error
	leader   string // another node's base URL; "" when this node leads
	added    []domain.Member
	removed  []string
	memErr   error // returned by AddVoter and RemoveServer when set
	nodes    []NodeInfo
	audit    AuditInfo
}

func (f *fakeCluster) setLeader(url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = url
}

func (f *fakeCluster) LeaderHTTPAddr() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader, f.leader != ""
}

func (f *fakeCluster) StateHash() string { return "abc123" }

func (f *fakeCluster) Hello() NodeHello {
	return NodeHello{ID: "n1", RaftAddr: "127.0.0.1:7000", HTTPAddr: "http://127.0.0.1:8080"}
}

func (f *fakeCluster) Audit() AuditInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.audit
}

func (f *fakeCluster) AddVoter(_ context.Context, m domain.Member) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.memErr != nil {
		return f.memErr
	}
	f.added = append(f.added, m)
	return nil
}

func (f *fakeCluster) RemoveServer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.memErr != nil {
		return f.memErr
	}
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeCluster) setNotReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notReady = err
}

func (f *fakeCluster) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notReady
}

func (f *fakeCluster) Info() ClusterInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	nodes := []NodeInfo{{ID: "n1", RaftAddr: "127.0.0.1:7000", HTTPAddr: "127.0.0.1:8080", Voter: true, State: "leader"}}
	if f.nodes != nil {
		nodes = append([]NodeInfo(nil), f.nodes...)
	}
	return ClusterInfo{
		Leader: &LeaderInfo{ID: "n1", HTTPAddr: "127.0.0.1:8080"},
		Term:   3, CommitIndex: 123, AppliedIndex: 123, LastLogIndex: 123,
		State: "leader", Ready: f.notReady == nil, Nodes: nodes,
	}
}

// syncBuffer is a log sink that tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv is a Server on fakes behind a real listener on 127.0.0.1.
type testEnv struct {
	t      testing.TB
	eng    *fakeEngine
	cl     *fakeCluster
	srv    *Server
	reg    *prometheus.Registry
	logs   *syncBuffer
	url    string
	secret []byte
	admin  string // token of user "root", role admin
	alice  string // token of user "alice"
	bob    string // token of user "bob"
}

func newEnv(t testing.TB, modify func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, eng: newFakeEngine(), cl: &fakeCluster{}, reg: prometheus.NewRegistry(),
		logs: &syncBuffer{}, secret: []byte(strings.Repeat("s", MinSecretLen))}
	cfg := DefaultConfig()
	cfg.Engine, cfg.Reader, cfg.Cluster = e.eng, e.eng, e.cl
	cfg.NodeID = "n1"
	cfg.AuthSecret = e.secret
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	cfg.Registry = e.reg
	cfg.RateLimit.PerSecond = 0
	if modify != nil {
		modify(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = srv
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.url = ts.URL
	e.admin = e.token("root", RoleAdmin)
	e.alice = e.token("alice", RoleUser)
	e.bob = e.token("bob", "")
	return e
}

func (e *testEnv) token(sub, role string) string {
	e.t.Helper()
	tok, err := MintToken(e.secret, sub, role, time.Hour)
	if err != nil {
		e.t.Fatalf("MintToken: %v", err)
	}
	return tok
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; hdr holds extra header name/value pairs. The answer
// must be one docs/openapi.yaml allows (openapi_test.go).
func (e *testEnv) do(method, path, token, body string, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatalf("NewRequest: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b := readAllAndCheck(e.t, e.srv, req, resp)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless the status is as expected and decodes the
// JSON body into out (when not nil).
func (r response) want(t testing.TB, status int, out any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
	}
}

type problemJSON struct {
	Type   string  `json:"type"`
	Title  string  `json:"title"`
	Status int     `json:"status"`
	Detail string  `json:"detail"`
	Code   string  `json:"code"`
	Limit  *string `json:"limit"` // limit_exceeded only
	Rule   string  `json:"rule"`  // limit_exceeded only: per_user or capacity
}

// wantProblem fails the test unless the answer is a problem details body
// with this status and code, and returns it.
func (r response) wantProblem(t testing.TB, status int, code string) problemJSON {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; status %d body %s", ct, r.status, r.body)
	}
	var p problemJSON
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decoding problem %s: %v", r.body, err)
	}
	if r.status != status || p.Status != status || p.Code != code {
		t.Fatalf("got status %d problem %+v, want %d %s", r.status, p, status, code)
	}
	if p.Type != typeBase+code || p.Title == "" || p.Detail == "" {
		t.Fatalf("incomplete problem %+v", p)
	}
	if (p.Limit != nil) != (code == "limit_exceeded") || p.Limit != nil && p.Rule != "per_user" && p.Rule != "capacity" {
		t.Fatalf("problem %s: limit_exceeded, and only it, names its limit and a rule of per_user or capacity", r.body)
	}
	return p
}

// reservationJSON is the API's reservation, decoded strictly in tests.
type reservationJSON struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
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

// putVoucher creates a voucher resource with the given extra JSON fields.
func (e *testEnv) putVoucher(id string, capacity int, extra string) {
	e.t.Helper()
	body := fmt.Sprintf(`{"kind":"voucher","capacity":%d%s}`, capacity, extra)
	e.do(http.MethodPut, "/v1/resources/"+id, e.admin, body).want(e.t, http.StatusCreated, nil)
}

// reserve books one unit of id as the token's user and returns it.
func (e *testEnv) reserve(id, token, body string) reservationJSON {
	e.t.Helper()
	var res reservationJSON
	e.do(http.MethodPost, "/v1/resources/"+id+"/reservations", token, body).want(e.t, http.StatusCreated, &res)
	return res
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
