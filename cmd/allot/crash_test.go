package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"allot/httpapi"
)

// The test binary doubles as the allot binary: with this variable set it runs
// main, so the crash test kills a real child process without building one.
const runMainEnv = "ALLOT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const crashSecret = "crash-test-secret-0123456789abcdef"

type child struct {
	cmd  *exec.Cmd
	base string
}

func startChild(t *testing.T, dir, httpAddr, raftAddr string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--data-dir", dir, "--http-addr", httpAddr, "--raft-addr", raftAddr, "--log-level", "warn")
	// Every test client is 127.0.0.1: no per-address limit.
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "ALLOT_AUTH_SECRET="+crashSecret, "ALLOT_IP_RATE_LIMIT=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, base: "http://" + httpAddr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(c.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node on %s not ready: %v", httpAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func call(hc *http.Client, method, url, user, role string, body []byte, key string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	tok, err := httpapi.MintToken([]byte(crashSecret), user, role, time.Hour)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestCrashLosesNoAcknowledgedReservation kills the node with SIGKILL in the
// middle of a flash crowd, restarts it on the same data dir and checks that
// every reservation that got a 201 is there and that the counts add up.
func TestCrashLosesNoAcknowledgedReservation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir, httpAddr, raftAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	node := startChild(t, dir, httpAddr, raftAddr)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const capacity = 400
	code, body, err := call(hc, "PUT", node.base+"/v1/resources/flash", "admin", "admin", []byte(fmt.Sprintf(`{"kind":"voucher","capacity":%d,"hold_seconds":0}`, capacity)), "")
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create: %d %s %v", code, body, err)
	}

	var mu sync.Mutex
	acked := map[string]string{} // reservation id -> user
	var ok atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				u := next.Add(1)
				if u > 2000 {
					return
				}
				user := fmt.Sprintf("u%d", u)
				code, body, err := call(hc, "POST", node.base+"/v1/resources/flash/reservations", user, "user", []byte(`{"quantity":1}`), "k-"+user)
				if err != nil {
					return // the node is gone
				}
				if code == http.StatusCreated {
					var r struct{ ID, User string }
					if err := json.Unmarshal(body, &r); err != nil {
						t.Errorf("bad 201 body %s", body)
						return
					}
					mu.Lock()
					acked[r.ID] = r.User
					mu.Unlock()
					ok.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for ok.Load() < capacity/4 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if err := node.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = node.cmd.Wait()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no reservation was acknowledged before the crash")
	}
	t.Logf("%d reservations acknowledged before SIGKILL", len(acked))

	node = startChild(t, dir, httpAddr, raftAddr)
	var list struct {
		Items []struct {
			ID, Status string
			User       string `json:"user"`
		} `json:"items"`
		Next string `json:"next"`
	}
	code, body, err = call(hc, "GET", node.base+"/v1/reservations?resource=flash&limit=1000", "admin", "admin", nil, "")
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("list: %d %s %v", code, body, err)
	}
	found := map[string]bool{}
	users := map[string]bool{}
	for _, it := range list.Items {
		found[it.ID] = true
		if users[it.User] {
			t.Fatalf("user %s holds two reservations", it.User)
		}
		users[it.User] = true
	}
	for id, user := range acked {
		if !found[id] {
			t.Fatalf("acknowledged reservation %s of %s lost in the crash", id, user)
		}
	}
	var res struct{ Available, Held, Confirmed int }
	code, body, err = call(hc, "GET", node.base+"/v1/resources/flash", "admin", "admin", nil, "")
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &res) != nil {
		t.Fatalf("resource: %d %s %v", code, body, err)
	}
	if res.Confirmed != len(list.Items) || res.Available+res.Held+res.Confirmed != capacity || res.Available < 0 {
		t.Fatalf("counts %+v do not match %d reservations of capacity %d", res, len(list.Items), capacity)
	}
	// The node keeps selling where it stopped, and stops at capacity.
	code, _, err = call(hc, "POST", node.base+"/v1/resources/flash/reservations", "after-crash", "user", []byte(`{}`), "")
	if err != nil || (code != http.StatusCreated && code != http.StatusConflict) {
		t.Fatalf("reserve after restart: %d %v", code, err)
	}
}
