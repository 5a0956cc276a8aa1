package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestLimitCrowdsSurviveSIGKILL runs two crowds over HTTP against one node
// and kills it with SIGKILL in the middle: 2,000 patients who each try all
// 4 slots of a day under "one booking per patient per day", and 2,000
// users over 3 vouchers that share a quota of 100. After a restart on the
// same data dir every request that had no answer is retried with its
// Idempotency-Key. Then nobody has two bookings of the day, every patient
// has one, and the vouchers sold exactly 100 in total; the limits' counts
// match the reservations.
func TestLimitCrowdsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir, httpAddr, raftAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	node := startChild(t, dir, httpAddr, raftAddr)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	mustCall := func(method, path, body string, want int) []byte {
		t.Helper()
		code, b, err := call(hc, method, node.base+path, "admin", "admin", []byte(body), "")
		if err != nil || code != want {
			t.Fatalf("%s %s: %d %s %v", method, path, code, b, err)
		}
		return b
	}
	mustCall("PUT", "/v1/limits/day", `{"per_user":1}`, http.StatusCreated)
	mustCall("PUT", "/v1/limits/campaign", `{"capacity":100}`, http.StatusCreated)
	slots := []string{"s0800", "s0830", "s0900", "s0930"}
	for _, s := range slots {
		mustCall("PUT", "/v1/resources/"+s, `{"kind":"slot","capacity":2000,"hold_seconds":0,"limits":["day"]}`, http.StatusCreated)
	}
	vouchers := []string{"v10", "v20", "v50"}
	for _, v := range vouchers {
		mustCall("PUT", "/v1/resources/"+v, `{"kind":"voucher","capacity":1000,"hold_seconds":0,"limits":["campaign"]}`, http.StatusCreated)
	}

	type attempt struct{ resource, user, key string }
	var work []attempt
	for u := range 2000 {
		p := fmt.Sprintf("p%04d", u)
		for _, s := range slots {
			work = append(work, attempt{s, p, p + "-" + s})
		}
		c := fmt.Sprintf("c%04d", u)
		work = append(work, attempt{vouchers[u%3], c, c})
	}
	var answered atomic.Int64
	outcome := make([]int, len(work)) // the last status seen; 0 = no answer
	run := func(stopAt int64) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(len(work)) || stopAt > 0 && answered.Load() >= stopAt {
						return
					}
					if outcome[i] != 0 && outcome[i] != http.StatusServiceUnavailable {
						continue
					}
					a := work[i]
					code, _, err := call(hc, "POST", node.base+"/v1/resources/"+a.resource+"/reservations", a.user, "user", []byte(`{"quantity":1}`), a.key)
					if err != nil {
						continue // the node is gone: retried after the restart
					}
					outcome[i] = code
					answered.Add(1)
				}
			})
		}
		wg.Wait()
	}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for answered.Load() < int64(len(work))/3 {
			time.Sleep(2 * time.Millisecond)
		}
		_ = node.cmd.Process.Signal(syscall.SIGKILL)
	}()
	run(0)
	<-killed
	_ = node.cmd.Wait()
	t.Logf("%d of %d requests answered before SIGKILL", answered.Load(), len(work))
	node = startChild(t, dir, httpAddr, raftAddr)
	for pass := 0; pass < 3; pass++ {
		run(0) // every request without a definite answer, again with its key
	}
	for i, code := range outcome {
		if code != http.StatusCreated && code != http.StatusConflict {
			t.Fatalf("%+v: last answer %d", work[i], code)
		}
	}

	type item struct {
		ID     string `json:"id"`
		User   string `json:"user"`
		Status string `json:"status"`
	}
	list := func(resource string) []item {
		var all []item
		after := ""
		for {
			var page struct {
				Items []item `json:"items"`
				Next  string `json:"next"`
			}
			b := mustCall("GET", "/v1/reservations?resource="+resource+"&limit=1000&after="+after, "", http.StatusOK)
			if err := json.Unmarshal(b, &page); err != nil {
				t.Fatal(err)
			}
			all = append(all, page.Items...)
			if page.Next == "" {
				return all
			}
			after = page.Next
		}
	}
	perPatient := map[string]int{}
	for _, s := range slots {
		for _, it := range list(s) {
			perPatient[it.User]++
		}
	}
	for u := range 2000 {
		if n := perPatient[fmt.Sprintf("p%04d", u)]; n != 1 {
			t.Fatalf("patient p%04d has %d bookings of the day", u, n)
		}
	}
	sold := 0
	for _, v := range vouchers {
		sold += len(list(v))
	}
	if sold != 100 {
		t.Fatalf("the vouchers sold %d, the quota is 100", sold)
	}
	var lim struct{ Taken int64 }
	for id, want := range map[string]int64{"day": 2000, "campaign": 100} {
		if err := json.Unmarshal(mustCall("GET", "/v1/limits/"+id, "", http.StatusOK), &lim); err != nil || lim.Taken != want {
			t.Fatalf("limit %s: taken %d (%v), want %d", id, lim.Taken, err, want)
		}
	}
}
