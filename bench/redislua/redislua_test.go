package redislua

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"allot/httpapi"
)

// startRedis starts a redis-server for the test, or skips it when there is
// none on PATH.
func startRedis(t *testing.T) *Process {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not on PATH (Debian: apt-get install redis-server)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(p.dir); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p.dir, err)
		}
	})
	return p
}

func TestStartRedisNeedsTheBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := StartRedis(context.Background())
	if !errors.Is(err, ErrNoRedis) || !strings.Contains(err.Error(), "apt-get install redis-server") {
		t.Fatalf("got %v, want a message naming the package", err)
	}
}

// TestScriptSemantics: the stock is checked first, then the user, and a
// purchase takes one unit and records the buyer.
func TestScriptSemantics(t *testing.T) {
	p := startRedis(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	if err := Seed(ctx, rdb, "v1", 2); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		voucher, user string
		want          Outcome
	}{
		{"v1", "ann", Bought},
		{"v1", "ann", AlreadyBought},
		{"v1", "bob", Bought},
		{"v1", "cat", SoldOut},
		{"v1", "ann", SoldOut}, // sold out is said first, as the classic script does
		{"v2", "ann", NoSuchVoucher},
	} {
		got, err := Reserve(ctx, rdb, c.voucher, c.user)
		if err != nil || got != c.want {
			t.Fatalf("%d: %s on %s: %v %v, want %v", i, c.user, c.voucher, got, err, c.want)
		}
	}
	if stock, buyers, err := State(ctx, rdb, "v1"); err != nil || stock != 0 || buyers != 2 {
		t.Fatalf("state %d left, %d buyers, %v", stock, buyers, err)
	}
	// Seeding again starts the voucher over.
	if err := Seed(ctx, rdb, "v1", 1); err != nil {
		t.Fatal(err)
	}
	if got, err := Reserve(ctx, rdb, "v1", "ann"); err != nil || got != Bought {
		t.Fatalf("after seeding again: %v %v", got, err)
	}
}

// TestScriptIsAtomic: many users racing for a few units, some of them
// twice, never take more than the stock nor two units each.
func TestScriptIsAtomic(t *testing.T) {
	p := startRedis(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), PoolSize: 32})
	defer rdb.Close()
	if err := Seed(ctx, rdb, "v", 50); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[Outcome]int{}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				o, err := Reserve(ctx, rdb, "v", "u"+string(rune('a'+(g*20+i)%300)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[o]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got[Bought] != 50 || got[Bought]+got[SoldOut]+got[AlreadyBought] != 640 {
		t.Fatalf("outcomes %v, want exactly 50 bought of 640", got)
	}
	if stock, buyers, err := State(ctx, rdb, "v"); err != nil || stock != 0 || buyers != 50 {
		t.Fatalf("state %d left, %d buyers, %v", stock, buyers, err)
	}
}

// TestServerAnswersLikeAllot drives the service over HTTP with allot's
// tokens and checks its answers and the audit.
func TestServerAnswersLikeAllot(t *testing.T) {
	p := startRedis(t)
	secret := []byte("redislua-test-secret-0123456789abcdef")
	srv, err := Start(Config{RedisAddr: p.Addr(), Secret: secret, PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	token := func(sub, role string) string {
		tok, err := httpapi.MintToken(secret, sub, role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	do := func(method, path, auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	admin := token("admin", "admin")
	if code, body := do("GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code, _ := do("PUT", "/v1/resources/v1", token("ann", "user"), `{"kind":"voucher","capacity":2}`); code != http.StatusForbidden {
		t.Errorf("a user's PUT answered %d", code)
	}
	if code, _ := do("PUT", "/v1/resources/v1", admin, `{"kind":"voucher","capacity":2,"per_user_limit":3}`); code != http.StatusBadRequest {
		t.Errorf("a per-user limit the script cannot keep answered %d", code)
	}
	if code, body := do("PUT", "/v1/resources/v1", admin, `{"kind":"voucher","capacity":2,"per_user_limit":1,"hold_seconds":900}`); code != http.StatusCreated {
		t.Fatalf("PUT %d %s", code, body)
	}
	reserve := func(user string) (int, string) {
		return do("POST", "/v1/resources/v1/reservations", token(user, ""), `{"quantity":1}`)
	}
	if code, _ := do("POST", "/v1/resources/v1/reservations", "", `{"quantity":1}`); code != http.StatusUnauthorized {
		t.Errorf("reserve without a token answered %d", code)
	}
	if code, _ := do("POST", "/v1/resources/v1/reservations", "Bearer "+strings.Repeat("x", 40), `{"quantity":1}`); code != http.StatusUnauthorized {
		t.Errorf("reserve with a forged token answered %d", code)
	}
	if code, body := reserve("ann"); code != http.StatusCreated || !strings.Contains(body, `"status":"confirmed"`) || !strings.Contains(body, `"user":"ann"`) {
		t.Fatalf("reserve: %d %s", code, body)
	}
	if code, body := reserve("ann"); code != http.StatusConflict || body != `{"status":409,"code":"limit_exceeded","limit":""}` {
		t.Errorf("second reserve: %d %s", code, body)
	}
	if code, _ := reserve("bob"); code != http.StatusCreated {
		t.Errorf("bob: %d", code)
	}
	if code, body := reserve("cat"); code != http.StatusConflict || body != `{"status":409,"code":"sold_out"}` {
		t.Errorf("sold out: %d %s", code, body)
	}
	if code, body := do("POST", "/v1/reservations/rl1/confirm", token("ann", ""), ""); code != http.StatusOK || !strings.Contains(body, `"status":"confirmed"`) {
		t.Errorf("confirm: %d %s", code, body)
	}
	a, err := srv.Audit(context.Background(), map[string]int64{"v1": 2}, 0)
	if err != nil || !a.Pass || a.Sold != 2 || a.Vouchers != 1 {
		t.Errorf("audit %+v %v", a, err)
	}
	// An acknowledgement Redis does not hold, or a buyer nobody was told
	// of, fails it.
	if a, _ := srv.Audit(context.Background(), map[string]int64{"v1": 3}, 0); a.Pass {
		t.Errorf("audit passed with a 201 Redis does not hold: %+v", a)
	}
	if a, _ := srv.Audit(context.Background(), map[string]int64{"v1": 1}, 0); a.Pass {
		t.Errorf("audit passed with a buyer nobody was answered: %+v", a)
	}
	if a, _ := srv.Audit(context.Background(), map[string]int64{"v1": 1}, 1); !a.Pass {
		t.Errorf("audit failed with a buyer whose answer was lost: %+v", a)
	}
}
