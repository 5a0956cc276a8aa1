package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dop251/goja"

	"allot/cmd/allot/server"
	"allot/httpapi"
)

// k6 itself is not a dependency of this project, so the k6 scripts of
// deploy/k6 are run here by goja, a JavaScript engine in Go, against a
// small stand-in for the k6 modules they use (k6, k6/http, k6/data,
// k6/execution) whose requests go to a real node in this process: each
// script's setup, then its default function once per token over a few VUs.
// Every k6 check must pass, and the state the run leaves must be
// consistent (units taken match the reservations; per-user and day limits
// hold), and the bench's verifier (go run ./bench --verify-only) must pass
// on the state the three runs left.

const k6Dir = repoRoot + "/deploy/k6"

// k6Run is one run of a script: its checks and the node it talks to.
type k6Run struct {
	t        *testing.T
	dir      string
	env      map[string]string
	client   *http.Client
	checks   atomic.Int64
	mu       sync.Mutex
	failed   map[string]int
	statuses map[string]map[int]int // request name -> status -> count
}

// Imports and exports the scripts use, rewritten to CommonJS for goja:
// every import and export sits on one line of its own.
var (
	importDefault = regexp.MustCompile(`(?m)^import (\w+) from '([^']+)';$`)
	importNamed   = regexp.MustCompile(`(?m)^import \{([^}]+)\} from '([^']+)';$`)
	exportDecl    = regexp.MustCompile(`(?m)^export (function|const|let) (\w+)`)
	exportDefault = regexp.MustCompile(`(?m)^export default function`)
	leftoverESM   = regexp.MustCompile(`(?m)^(import|export)\b`)
)

func toCommonJS(src string) (string, error) {
	var names []string
	src = importDefault.ReplaceAllString(src, "const $1 = require('$2').default;")
	src = importNamed.ReplaceAllString(src, "const {$1} = require('$2');")
	src = exportDecl.ReplaceAllStringFunc(src, func(m string) string {
		parts := exportDecl.FindStringSubmatch(m)
		names = append(names, parts[2])
		return parts[1] + " " + parts[2]
	})
	src = exportDefault.ReplaceAllString(src, "exports.default = function")
	if m := leftoverESM.FindString(src); m != "" {
		return "", fmt.Errorf("an %s this test cannot rewrite (keep imports and exports on one line)", m)
	}
	for _, n := range names {
		src += fmt.Sprintf("\nexports.%s = %s;", n, n)
	}
	return src, nil
}

// vu is one virtual user: a runtime of its own, as in k6.
type vu struct {
	rt      *goja.Runtime
	exports *goja.Object
	exec    *goja.Object
}

// newVU evaluates script (the init context) in a fresh runtime.
func (r *k6Run) newVU(script string, id int) (*vu, error) {
	rt := goja.New()
	rt.SetFieldNameMapper(goja.TagFieldNameMapper("json", true))
	v := &vu{rt: rt}
	env := rt.NewObject()
	for k, val := range r.env {
		env.Set(k, val)
	}
	rt.Set("__ENV", env)
	rt.Set("__VU", id)
	rt.Set("open", func(path string) (string, error) {
		b, err := os.ReadFile(path)
		return string(b), err
	})
	exec, _ := rt.RunString(`({vu: {idInTest: 0}, scenario: {iterationInTest: 0}})`)
	v.exec = exec.ToObject(rt)
	v.exec.Get("vu").ToObject(rt).Set("idInTest", id)
	modules := map[string]*goja.Object{}
	k6 := rt.NewObject()
	k6.Set("check", r.check)
	k6.Set("sleep", func(float64) {}) // think times and Retry-After cost the test nothing
	modules["k6"] = k6
	httpMod := rt.NewObject()
	httpMod.Set("request", func(method, u string, body goja.Value, params map[string]any) (*goja.Object, error) {
		return r.request(rt, method, u, body, params)
	})
	httpMod.Set("default", httpMod)
	modules["k6/http"] = httpMod
	data, _ := rt.RunString(`({SharedArray: function (name, fn) { return fn(); }})`)
	modules["k6/data"] = data.ToObject(rt)
	execMod := rt.NewObject()
	execMod.Set("default", v.exec)
	modules["k6/execution"] = execMod

	var require func(string) (*goja.Object, error)
	require = func(name string) (*goja.Object, error) {
		if m, ok := modules[name]; ok {
			return m, nil
		}
		if !strings.HasPrefix(name, "./") {
			return nil, fmt.Errorf("module %q is not one this stand-in has", name)
		}
		m, err := r.load(rt, filepath.Join(r.dir, name), require)
		if err == nil {
			modules[name] = m
		}
		return m, err
	}
	rt.Set("require", require)
	var err error
	v.exports, err = r.load(rt, filepath.Join(r.dir, script), require)
	return v, err
}

// load evaluates one script file as a CommonJS module.
func (r *k6Run) load(rt *goja.Runtime, path string, require func(string) (*goja.Object, error)) (*goja.Object, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cjs, err := toCommonJS(string(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	prog, err := goja.Compile(path, "(function (require, exports) {\n"+cjs+"\n})", true)
	if err != nil {
		return nil, err
	}
	fn, err := rt.RunProgram(prog)
	if err != nil {
		return nil, err
	}
	call, _ := goja.AssertFunction(fn)
	exports := rt.NewObject()
	if _, err := call(goja.Undefined(), rt.ToValue(require), exports); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return exports, nil
}

// check is k6's check: every named condition is a function of val.
func (r *k6Run) check(val goja.Value, sets map[string]goja.Value) (bool, error) {
	all := true
	for name, cond := range sets {
		fn, ok := goja.AssertFunction(cond)
		if !ok {
			return false, fmt.Errorf("check %q is not a function", name)
		}
		res, err := fn(goja.Undefined(), val)
		if err != nil {
			return false, err
		}
		r.checks.Add(1)
		if !res.ToBoolean() {
			all = false
			r.mu.Lock()
			r.failed[name]++
			r.mu.Unlock()
		}
	}
	return all, nil
}

// request is k6/http's request, sent to the node.
func (r *k6Run) request(rt *goja.Runtime, method, u string, body goja.Value, params map[string]any) (*goja.Object, error) {
	var rd io.Reader
	if body != nil && !goja.IsNull(body) && !goja.IsUndefined(body) {
		rd = strings.NewReader(body.String())
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	name := ""
	if h, ok := params["headers"].(map[string]any); ok {
		for k, v := range h {
			req.Header.Set(k, fmt.Sprint(v))
		}
	}
	if tags, ok := params["tags"].(map[string]any); ok {
		name = fmt.Sprint(tags["name"])
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.statuses[name] == nil {
		r.statuses[name] = map[int]int{}
	}
	r.statuses[name][resp.StatusCode]++
	r.mu.Unlock()
	headers := rt.NewObject()
	for k := range resp.Header {
		headers.Set(k, resp.Header.Get(k))
	}
	res := rt.NewObject()
	res.Set("status", resp.StatusCode)
	res.Set("body", string(b))
	res.Set("headers", headers)
	return res, nil
}

// runScript runs script's setup once and its default function once per
// token over vus virtual users.
func (r *k6Run) runScript(script string, iterations, vus int) {
	r.t.Helper()
	setupVU, err := r.newVU(script, 0)
	if err != nil {
		r.t.Fatalf("%s: init: %v", script, err)
	}
	data := goja.Value(goja.Undefined())
	if fn, ok := goja.AssertFunction(setupVU.exports.Get("setup")); ok {
		if data, err = fn(goja.Undefined()); err != nil {
			r.t.Fatalf("%s: setup: %v", script, err)
		}
	}
	raw, err := json.Marshal(data.Export()) // setup data reaches the VUs as JSON, as in k6
	if err != nil {
		r.t.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, vus)
	for id := 1; id <= vus; id++ {
		v, err := r.newVU(script, id)
		if err != nil {
			r.t.Fatalf("%s: init of VU %d: %v", script, id, err)
		}
		def, ok := goja.AssertFunction(v.exports.Get("default"))
		if !ok {
			r.t.Fatalf("%s has no default function", script)
		}
		wg.Go(func() {
			var arg any
			if err := json.Unmarshal(raw, &arg); err != nil {
				errs <- err
				return
			}
			for {
				i := next.Add(1) - 1
				if i >= int64(iterations) {
					return
				}
				v.exec.Get("scenario").ToObject(v.rt).Set("iterationInTest", i)
				v.rt.Set("__ITER", i)
				if _, err := def(goja.Undefined(), v.rt.ToValue(arg)); err != nil {
					errs <- fmt.Errorf("iteration %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		r.t.Errorf("%s: %v", script, err)
	}
}

// TestK6Scripts runs every flow of deploy/k6 against a node.
func TestK6Scripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and runs three load scripts")
	}
	secret := strings.Repeat("k", 32)
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.AuthSecret = []byte(secret)
	cfg.HTTP.IPRateLimit.PerSecond = 0
	srv, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + srv.HTTPAddr()
	client := &http.Client{Timeout: 15 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("node not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	admin, err := httpapi.MintToken([]byte(secret), "ops", httpapi.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ALLOT_AUTH_SECRET", secret)

	for _, tc := range []struct {
		script, prefix string
		users          int
		env            map[string]string
	}{
		// Small stock, so that some users find it sold out.
		{"seckill.js", "u", 120, map[string]string{"VOUCHERS": "2", "STOCK": "40"}},
		{"hospital.js", "p", 150, map[string]string{"DOCTORS": "2", "DAYS": "2", "SLOT_CAPACITY": "2"}},
		{"hotel.js", "g", 120, map[string]string{"ROOM_TYPES": "2", "ROOMS": "3"}},
	} {
		t.Run(tc.script, func(t *testing.T) {
			// The tokens come from `allot token --prefix --count`, as the
			// scripts' instructions say.
			var tokens strings.Builder
			if err := run([]string{"token", "--prefix", tc.prefix, "--count", fmt.Sprint(tc.users)}, &tokens, io.Discard); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "tokens.txt")
			if err := os.WriteFile(file, []byte(tokens.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			prefix := strings.TrimSuffix(tc.script, ".js")
			env := map[string]string{"ALLOT_URLS": base, "TOKENS_FILE": file, "ADMIN_TOKEN": admin, "PREFIX": prefix}
			for k, v := range tc.env {
				env[k] = v
			}
			r := &k6Run{t: t, dir: k6Dir, env: env, client: client, failed: map[string]int{}, statuses: map[string]map[int]int{}}
			r.runScript(tc.script, tc.users, 4)
			t.Logf("%d checks; answers by request: %v", r.checks.Load(), r.statuses)
			if r.checks.Load() == 0 {
				t.Fatal("no check ran")
			}
			for name, n := range r.failed {
				t.Errorf("check %q failed %d times", name, n)
			}
			if r.statuses["reserve"][http.StatusCreated] == 0 {
				t.Errorf("no reservation was made: %v", r.statuses)
			}
			checkConsistent(t, client, base, admin, prefix)
		})
	}

	// Then, as docs/BENCHMARKS.md says to after a k6 run, the bench's
	// verifier checks the whole state the three runs left.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to run the bench's --verify-only with")
	}
	cmd := exec.Command(goTool, "run", filepath.Join(repoRoot, "bench"), "--verify-only", "--target", base)
	cmd.Env = append(os.Environ(), "ALLOT_AUTH_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify: PASS") {
		t.Fatalf("go run ./bench --verify-only: %v\n%s", err, out)
	}
	t.Logf("go run ./bench --verify-only --target %s:\n%s", base, out)
}

// checkConsistent checks the state a run left: for every resource of the
// run, the units it counts as taken are the units of its reservations that
// are held, confirmed, checked in or completed; no user holds more than
// the per-user limit; and no user takes more than one unit of a limit
// group with per_user 1 (the hospital's days). Expiries may change the
// state between reads, so it asks again until the reads agree.
func checkConsistent(t *testing.T, client *http.Client, base, admin, prefix string) {
	t.Helper()
	get := func(path string, v any) error {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return json.Unmarshal(b, v)
	}
	type reservation struct {
		User     string `json:"user"`
		Quantity int64  `json:"quantity"`
		Status   string `json:"status"`
		CheckIn  string `json:"check_in"`
		CheckOut string `json:"check_out"`
	}
	type resource struct {
		ID           string   `json:"id"`
		Kind         string   `json:"kind"`
		Capacity     int64    `json:"capacity"`
		PerUserLimit int64    `json:"per_user_limit"`
		Limits       []string `json:"limits"`
		Held         int64    `json:"held"`
		Confirmed    int64    `json:"confirmed"`
		Nights       map[string]struct {
			Rooms     int64 `json:"rooms"`
			Available int64 `json:"available"`
		} `json:"nights"`
	}
	taken := map[string]bool{"held": true, "confirmed": true, "checked_in": true, "completed": true}
	round := func() error {
		var list struct {
			Items []resource `json:"items"`
			Next  string     `json:"next"`
		}
		if err := get("/v1/resources?limit=1000&prefix="+url.QueryEscape(prefix), &list); err != nil {
			return err
		}
		if len(list.Items) == 0 || list.Next != "" {
			return fmt.Errorf("%d resources of %s (next %q)", len(list.Items), prefix, list.Next)
		}
		perLimit := map[string]map[string]int64{} // limit -> user -> units
		for _, item := range list.Items {
			var res resource
			if err := get("/v1/resources/"+item.ID, &res); err != nil {
				return err
			}
			var rs struct {
				Items []reservation `json:"items"`
				Next  string        `json:"next"`
			}
			if err := get("/v1/reservations?limit=1000&resource="+url.QueryEscape(res.ID), &rs); err != nil {
				return err
			}
			if rs.Next != "" {
				return fmt.Errorf("%s: more than a page of reservations", res.ID)
			}
			users := map[string]int64{}
			nights := map[string]int64{}
			var units int64
			for _, r := range rs.Items {
				if !taken[r.Status] {
					continue
				}
				units += r.Quantity
				users[r.User] += r.Quantity
				for _, l := range res.Limits {
					if perLimit[l] == nil {
						perLimit[l] = map[string]int64{}
					}
					perLimit[l][r.User] += r.Quantity
				}
				if r.CheckIn != "" {
					in, _ := time.Parse(time.DateOnly, r.CheckIn)
					out, _ := time.Parse(time.DateOnly, r.CheckOut)
					for d := in; d.Before(out); d = d.AddDate(0, 0, 1) {
						nights[d.Format(time.DateOnly)] += r.Quantity
					}
				}
			}
			if res.Kind == "room" {
				for d, n := range res.Nights {
					if n.Available < 0 || n.Rooms-n.Available != nights[d] {
						return fmt.Errorf("%s on %s: %d rooms, %d available, %d taken by reservations", res.ID, d, n.Rooms, n.Available, nights[d])
					}
				}
			} else if res.Held+res.Confirmed != units || units > res.Capacity {
				return fmt.Errorf("%s: %d held + %d confirmed of %d, reservations take %d", res.ID, res.Held, res.Confirmed, res.Capacity, units)
			}
			for u, n := range users {
				if res.PerUserLimit > 0 && n > res.PerUserLimit {
					return fmt.Errorf("%s: %s takes %d, per-user limit %d", res.ID, u, n, res.PerUserLimit)
				}
			}
		}
		for l, users := range perLimit {
			for u, n := range users {
				if n > 1 {
					return fmt.Errorf("limit %s: %s takes %d units, per_user is 1", l, u, n)
				}
			}
		}
		return nil
	}
	var err error
	for range 20 {
		if err = round(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("inconsistent state after the run: %v", err)
}
