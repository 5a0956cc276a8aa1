//go:build browser

package ui_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"allot/cluster/testpki"
	"allot/cmd/allot/server"
	"allot/cmd/allot/server/servertest"
	"allot/httpapi"
)

var screenshots = flag.String("screenshots", "", "directory to write the console's screenshots into (the README's are in docs/img)")

// chromiumPath finds a Chromium binary. Without one the test skips,
// unless ALLOT_BROWSER_REQUIRED is set (CI sets it), when it fails.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ALLOT_BROWSER_REQUIRED") != "" {
		t.Fatal("no chromium binary on PATH and ALLOT_BROWSER_REQUIRED is set (apt-get install chromium)")
	}
	t.Skip("no chromium binary on PATH (apt-get install chromium); set ALLOT_BROWSER_REQUIRED=1 to fail instead")
	return ""
}

// browser starts headless Chromium and returns a context for its first
// tab.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1280, 1000),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// pageFaults collects what a tab's console reports as faults: exceptions
// and error entries other than network ones (those are HTTP answers the
// console handles, such as a user's 403 on the event stream); a Content
// Security Policy violation is a "security" entry. check fails the test
// with them.
type pageFaults struct {
	mu     sync.Mutex
	faults []string
}

func watchPage(ctx context.Context) *pageFaults {
	pf := &pageFaults{}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				pf.mu.Lock()
				pf.faults = append(pf.faults, fmt.Sprintf("%s (%s %s:%d)", m, m.Source, m.URL, m.Line))
				pf.mu.Unlock()
			}
		}
	}()
	return pf
}

func (pf *pageFaults) check(t *testing.T) {
	t.Helper()
	pf.mu.Lock()
	defer pf.mu.Unlock()
	for _, f := range pf.faults {
		t.Errorf("page console: %s", f)
	}
}

// pageState is what the console shows, read from its DOM.
type pageState struct {
	Leader     string   `json:"leader"`
	Available  string   `json:"available"`
	Held       string   `json:"held"`
	Confirmed  string   `json:"confirmed"`
	Offsets    []int    `json:"offsets"`
	Types      []string `json:"types"`
	Accepted   string   `json:"accepted"`
	SoldOut    string   `json:"sold_out"`
	Limited    string   `json:"limited"`
	AdminShown bool     `json:"admin_shown"`
	EventsNote string   `json:"events_note"`
}

const readState = `(() => {
  const q = (s) => document.querySelector(s);
  const txt = (s) => (q(s) ? q(s).textContent : '');
  const row = '#res-list tr[data-id="%s"] ';
  const evs = [...document.querySelectorAll('#ev-list tr[data-offset]')];
  return {
    leader: txt('#cl-leader'),
    available: txt(row + 'td.available'), held: txt(row + 'td.held'), confirmed: txt(row + 'td.confirmed'),
    offsets: evs.map((e) => Number(e.dataset.offset)), types: evs.map((e) => e.dataset.type),
    accepted: txt('.rate[data-rate="accepted"] .total'), sold_out: txt('.rate[data-rate="sold_out"] .total'),
    limited: txt('.rate[data-rate="limited"] .total'),
    admin_shown: !q('#admin').hidden, events_note: txt('#ev-list td.muted'),
  };
})()`

func read(ctx context.Context, resource string) (pageState, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[pageState](fmt.Sprintf(readState, resource)))
}

// eventually polls the page until ok accepts what it shows, failing the
// test with the last state at the deadline.
func eventually(t *testing.T, ctx context.Context, resource, what string, ok func(pageState) bool) pageState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := read(ctx, resource)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console never showed %s: last %+v (err %v)", what, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs steps on the tab of ctx, failing the test after 20 s.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one action that returns a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// signIn opens the console and signs in with token.
func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(base+"/ui"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("console")),
	)
}

// poll waits until a JavaScript expression is true in the page.
func poll(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v", expr, err)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf := value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil || img.Bounds().Dx() < 1000 {
		t.Fatalf("screenshot %s: not a full-width PNG (%v)", name, err)
	}
	dir := *screenshots
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %dx%d", filepath.Join(dir, name), img.Bounds().Dx(), img.Bounds().Dy())
}

// TestConsoleInBrowser drives the console in headless Chromium against a
// node in this process: an admin signs in, creates a voucher through the
// form and its confirm step, a crowd reserves over HTTP, and the page's
// counts, event list and rates reach the committed values; a cancel
// through the console moves them again. A user token then sees the same
// counts (polled) and no admin actions.
func TestConsoleInBrowser(t *testing.T) {
	start := time.Now()
	ctx := browser(t)
	faults := watchPage(ctx)
	defer faults.check(t)
	c := servertest.MakeCluster(t, 1, servertest.Options{})
	base := c.Node(0).URL()
	admin := c.Client(0)

	signIn(t, ctx, base, c.Token("root", httpapi.RoleAdmin))
	eventually(t, ctx, "flash-1", "the leader", func(s pageState) bool { return s.Leader == "n1" && s.AdminShown })

	// Create the voucher through the form; the confirm step shows the body.
	run(t, ctx, "create a voucher",
		chromedp.SetValue(chromedp.CSS(`#res-form [name=id]`), "flash-1"),
		chromedp.SetValue(chromedp.CSS(`#res-form [name=kind]`), "voucher"),
		chromedp.SetValue(chromedp.CSS(`#res-form [name=capacity]`), "20"),
		chromedp.SetValue(chromedp.CSS(`#res-form [name=attributes]`), `{"campaign":"<b>winter</b>"}`),
		chromedp.Click(chromedp.CSS(`#res-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("confirm")),
	)
	body := value(t, ctx, "the confirm step", chromedp.TextContent(chromedp.ID("confirm-body")))
	if !strings.Contains(body, `"capacity": 20`) || !strings.Contains(body, `"kind": "voucher"`) {
		t.Fatalf("the confirm step shows %q", body)
	}
	admin.Must("GET", "/v1/resources/flash-1", nil, http.StatusNotFound) // nothing sent before the confirm
	run(t, ctx, "confirm",
		chromedp.Click(chromedp.ID("confirm-ok")),
		chromedp.WaitNotVisible(chromedp.ID("confirm")),
	)
	poll(t, ctx, `document.getElementById('admin-result').textContent.startsWith('saved')`)
	result := value(t, ctx, "the admin result", chromedp.TextContent(chromedp.ID("admin-result")))
	if result != "saved flash-1 (voucher)" {
		t.Fatalf("admin result %q", result)
	}
	eventually(t, ctx, "flash-1", "the new voucher", func(s pageState) bool { return s.Available == "20" })

	// A crowd of 30 for 20 units.
	const crowd, capacity, confirms = 30, 20, 5
	var mu sync.Mutex
	codes := map[int]int{}
	var held []string
	var wg sync.WaitGroup
	for i := range crowd {
		wg.Go(func() {
			r, err := admin.As(fmt.Sprintf("u%02d", i), httpapi.RoleUser).Do("POST", "/v1/resources/flash-1/reservations", `{"quantity":1}`)
			if err != nil {
				t.Errorf("reserve: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			codes[r.Status]++
			if r.Status == http.StatusCreated {
				var v struct{ ID, User string }
				if err := r.Decode(&v); err != nil {
					t.Error(err)
				}
				held = append(held, v.ID+" "+v.User)
			}
		})
	}
	wg.Wait()
	if codes[http.StatusCreated] != capacity || codes[http.StatusConflict] != crowd-capacity {
		t.Fatalf("crowd answers %v, want %d created and %d sold out", codes, capacity, crowd-capacity)
	}
	for _, h := range held[:confirms] {
		id, user, _ := strings.Cut(h, " ")
		admin.As(user, httpapi.RoleUser).Must("POST", "/v1/reservations/"+id+"/confirm", nil, http.StatusOK)
	}

	// A second try of one who has a unit: the per-user limit (1) refuses it.
	_, user0, _ := strings.Cut(held[0], " ")
	if r := admin.As(user0, httpapi.RoleUser).Must("POST", "/v1/resources/flash-1/reservations", `{}`, http.StatusConflict); !strings.Contains(string(r.Body), "limit_exceeded") {
		t.Fatalf("second try: %s", r.Body)
	}

	// Cancel one hold through the console (its row in the detail panel).
	cancelID, _, _ := strings.Cut(held[confirms], " ")
	row := `#rd-reservations tr[data-rid="` + cancelID + `"] button.cancel`
	run(t, ctx, "cancel a reservation",
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm-ok")),
	)
	poll(t, ctx, `document.getElementById('admin-result').textContent.endsWith('is cancelled')`)

	// The committed values, read back over HTTP.
	var res struct{ Available, Held, Confirmed int }
	if err := admin.Must("GET", "/v1/resources/flash-1", nil, http.StatusOK).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if res.Available != 1 || res.Held != capacity-confirms-1 || res.Confirmed != confirms {
		t.Fatalf("committed counts %+v", res)
	}
	var evs struct{ Head int }
	if err := admin.Must("GET", "/v1/events?limit=1", nil, http.StatusOK).Decode(&evs); err != nil {
		t.Fatal(err)
	}
	// resource.created, 20 holds, 5 confirms, 1 cancel.
	if evs.Head != 1+capacity+confirms+1 {
		t.Fatalf("event head %d", evs.Head)
	}
	want := func(s pageState) bool {
		return s.Available == strconv.Itoa(res.Available) && s.Held == strconv.Itoa(res.Held) && s.Confirmed == strconv.Itoa(res.Confirmed)
	}
	st := eventually(t, ctx, "flash-1", "the committed counts and events", func(s pageState) bool {
		return want(s) && len(s.Offsets) == evs.Head && s.Offsets[0] == evs.Head &&
			s.Accepted == strconv.Itoa(capacity) && s.SoldOut == strconv.Itoa(crowd-capacity) && s.Limited == "1"
	})
	for i, off := range st.Offsets {
		if off != evs.Head-i {
			t.Fatalf("events list offsets %v: not the newest first without gaps", st.Offsets)
		}
	}
	kinds := map[string]int{}
	for _, ty := range st.Types {
		kinds[ty]++
	}
	if kinds["reservation.held"] != capacity || kinds["reservation.confirmed"] != confirms ||
		kinds["reservation.cancelled"] != 1 || kinds["resource.created"] != 1 {
		t.Fatalf("events list types %v", kinds)
	}
	// The attribute with markup is shown as text, not as markup.
	if value(t, ctx, "markup check", chromedp.Evaluate[int](`document.querySelectorAll('#res-detail b').length`)) != 0 {
		t.Fatal("an attribute value was rendered as HTML")
	}
	// A room: its row sums room-nights, its detail shows each night.
	admin.Must("PUT", "/v1/resources/suite-1", map[string]any{"kind": "room",
		"inventory": []map[string]any{{"from": "2030-01-01", "to": "2030-01-04", "rooms": 2}}}, http.StatusCreated)
	admin.As("u50", httpapi.RoleUser).Must("POST", "/v1/resources/suite-1/reservations",
		`{"check_in":"2030-01-01","check_out":"2030-01-03"}`, http.StatusCreated)
	eventually(t, ctx, "suite-1", "the room's room-nights", func(s pageState) bool {
		return s.Available == "4" && s.Held == "2" && s.Confirmed == "0"
	})
	screenshot(t, ctx, "console.png")
	run(t, ctx, "select the room", chromedp.Click(chromedp.CSS(`#res-list tr[data-id="suite-1"]`)))
	poll(t, ctx, `(() => { const n = document.querySelector('#rd-nights tr[data-night="2030-01-01"] td.available');
		const m = document.querySelector('#rd-nights tr[data-night="2030-01-03"] td.available');
		return !!n && n.textContent === '1' && !!m && m.textContent === '2'; })()`)
	t.Logf("admin view reached the committed state after %v", time.Since(start).Round(time.Millisecond))

	// A user, in a tab of its own (session storage is per tab): the same
	// counts by polling, no admin actions, no events.
	uctx, cancel := chromedp.NewContext(ctx)
	defer cancel()
	ufaults := watchPage(uctx)
	defer ufaults.check(t)
	signIn(t, uctx, base, c.Token("u99", httpapi.RoleUser))
	eventually(t, uctx, "flash-1", "the user's view", func(s pageState) bool {
		return want(s) && !s.AdminShown && strings.Contains(s.EventsNote, "needs an admin or consumer token")
	})
	screenshot(t, uctx, "console-user.png")
	// The admin form, made visible by hand, gets the API's 403 and says so.
	run(t, uctx, "a user's admin request",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('admin').hidden = false`),
		chromedp.SetValue(chromedp.CSS(`#res-form [name=id]`), "flash-1"),
		chromedp.SetValue(chromedp.CSS(`#res-form [name=capacity]`), "99"),
		chromedp.Click(chromedp.CSS(`#res-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm-ok")),
	)
	poll(t, uctx, `document.getElementById('admin-result').textContent.startsWith('not allowed for this token (403)')`)
	if err := admin.Must("GET", "/v1/resources/flash-1", nil, http.StatusOK).Decode(&res); err != nil || res.Available != 1 {
		t.Fatalf("the user's PUT changed the voucher: %+v (%v)", res, err)
	}
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
}

// TestConsoleOverHTTPS: a node serving the API over HTTPS (--tls-cert)
// serves a console that works there unchanged: relative URLs keep the
// scheme, and the event stream reaches the page over TLS.
func TestConsoleOverHTTPS(t *testing.T) {
	pki := testpki.NewCA(t)
	_, cert, key := pki.WriteFiles(t, t.TempDir(), "node")
	// The test CA is not the browser's; the check of the certificate
	// itself is the API's HTTPS tests' business.
	ctx := browser(t, chromedp.Flag("ignore-certificate-errors", true))
	faults := watchPage(ctx)
	defer faults.check(t)
	c := servertest.MakeCluster(t, 1, servertest.Options{Tune: func(_ int, cfg *server.Config) {
		cfg.TLSCertFile, cfg.TLSKeyFile = cert, key
	}})
	base := "https://" + strings.TrimPrefix(c.Node(0).URL(), "http://")
	signIn(t, ctx, base, c.Token("root", httpapi.RoleAdmin))
	eventually(t, ctx, "tls-1", "the leader over https", func(s pageState) bool { return s.Leader == "n1" })

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}}
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest("PUT", base+"/v1/resources/tls-1", strings.NewReader(`{"kind":"voucher","capacity":3}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token("root", httpapi.RoleAdmin))
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT over https: %d", resp.StatusCode)
	}
	eventually(t, ctx, "tls-1", "the voucher and its event over https", func(s pageState) bool {
		return s.Available == "3" && len(s.Types) == 1 && s.Types[0] == "resource.created"
	})
	if proto := value(t, ctx, "the page's scheme", chromedp.Evaluate[string](`location.protocol`)); proto != "https:" {
		t.Fatalf("the console was served over %s", proto)
	}
}

// TestConsoleOnFollower: the console of a follower of three nodes shows
// the whole cluster, streams the follower's own committed events and
// re-reads counts from it, and says that its decision counters are the
// leader's to show.
func TestConsoleOnFollower(t *testing.T) {
	ctx := browser(t)
	faults := watchPage(ctx)
	defer faults.check(t)
	c := servertest.MakeCluster(t, 3, servertest.Options{})
	leader := c.Leader()
	follower := c.Followers()[0]
	signIn(t, ctx, follower.URL(), c.Token("root", httpapi.RoleAdmin))
	admin := c.Client(leader.Index())
	admin.Must("PUT", "/v1/resources/flash-2", map[string]any{"kind": "voucher", "capacity": 40}, http.StatusCreated)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := admin.As(fmt.Sprintf("x%02d", i), httpapi.RoleUser).Do("POST", "/v1/resources/flash-2/reservations", `{}`); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	eventually(t, ctx, "flash-2", "the follower's counts and events", func(s pageState) bool {
		return s.Leader == leader.ID() && s.Available == "0" && s.Held == "40" &&
			len(s.Offsets) > 0 && s.Offsets[0] == 41 && s.Accepted == "40"
	})
	poll(t, ctx, `document.querySelectorAll('#cl-nodes tr').length === 3 &&
		document.getElementById('rates-source').textContent.includes('This node does not lead')`)
	screenshot(t, ctx, "console-cluster.png")
}
