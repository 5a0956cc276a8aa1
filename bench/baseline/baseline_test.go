package baseline

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestBaselineAnswersLikeAllot(t *testing.T) {
	if _, ok := Handler().(*gin.Engine); !ok {
		t.Fatalf("Handler is a %T, want a gin engine like allot's", Handler())
	}
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %s, want loopback", srv.URL())
	}
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
		return res.StatusCode, m
	}
	code, m := do(http.MethodPost, "/v1/resources/h1/reservations", `{"quantity":2,"check_in":"2026-12-01","check_out":"2026-12-03"}`)
	if code != http.StatusCreated || m["id"] == "" || m["quantity"] != 2.0 || m["status"] != "held" || m["check_out"] != "2026-12-03" {
		t.Errorf("reserve: %d %v", code, m)
	}
	if code, m := do(http.MethodPost, "/v1/reservations/r1/check-in", ""); code != http.StatusOK || m["status"] != "checked_in" || m["id"] != "r1" {
		t.Errorf("check-in: %d %v", code, m)
	}
	if code, m := do(http.MethodPut, "/v1/resources/v1", `{"kind":"voucher","capacity":5}`); code != http.StatusCreated || m["id"] != "v1" {
		t.Errorf("put: %d %v", code, m)
	}
	if code, m := do(http.MethodPost, "/v1/resources/v1/reservations", `{"quantity":`); code != http.StatusBadRequest || m["code"] != "invalid_argument" {
		t.Errorf("bad body: %d %v", code, m)
	}
	if code, _ := do(http.MethodPost, "/v1/reservations/r1/refund", ""); code != http.StatusNotFound {
		t.Errorf("unknown transition: %d", code)
	}
}
