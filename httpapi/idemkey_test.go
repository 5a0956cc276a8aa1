package httpapi

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestIdemKeyFingerprint checks that the fingerprint is the first 16 bytes
// of SHA-256 over method, path and body, for bodies hashed from the stack
// and bodies too long for it: fingerprints are stored, so they must not
// change.
func TestIdemKeyFingerprint(t *testing.T) {
	for _, n := range []int{0, 14, maxStackFingerprint - 40, maxStackFingerprint, 4096} {
		body := []byte(strings.Repeat("b", n))
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodPost, "/v1/resources/flash-1/reservations", nil)
		c.Request.Header.Set(headerIdemKey, "k1")
		k, err := idemKey(c, body)
		if err != nil || k == nil || k.Key != "k1" {
			t.Fatalf("%d bytes: %+v, %v", n, k, err)
		}
		sum := sha256.Sum256([]byte("POST\n/v1/resources/flash-1/reservations\n" + string(body)))
		if string(k.Fingerprint[:]) != string(sum[:16]) {
			t.Errorf("%d bytes: fingerprint %x, want %x", n, k.Fingerprint, sum[:16])
		}
	}
}
