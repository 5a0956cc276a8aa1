package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestWriteDataMatchesGinData checks that writeData answers what c.Data
// answers: status, every header and the body, for statuses with and
// without a body, bodies around the shared lengths, and a Content-Type set
// before.
func TestWriteDataMatchesGinData(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	answer := func(write func(c *gin.Context), preset bool) *httptest.ResponseRecorder {
		r := gin.New()
		r.GET("/", func(c *gin.Context) {
			if preset {
				c.Header("Content-Type", "text/plain")
			}
			write(c)
		})
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec
	}
	for _, status := range []int{200, 201, 204, 304, 409, 503} {
		for _, n := range []int{0, 1, 99, 100, maxSharedLength, maxSharedLength + 1} {
			for _, preset := range []bool{false, true} {
				for _, ct := range [][]string{contentTypeJSON, contentTypeProblem} {
					body := bytes.Repeat([]byte("x"), n)
					want := answer(func(c *gin.Context) { c.Data(status, ct[0], body) }, preset)
					got := answer(func(c *gin.Context) { writeData(c, status, ct, body) }, preset)
					name := strconv.Itoa(status) + "/" + strconv.Itoa(n) + "/" + ct[0]
					if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
						t.Errorf("%s preset %v: got %d %v %q, want %d %v %q", name, preset,
							got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
					}
				}
			}
		}
	}
}

// TestSharedHeaderValuesStayUnchanged checks that adding to a shared
// header value in one answer leaves the next answer's alone.
func TestSharedHeaderValuesStayUnchanged(t *testing.T) {
	h := http.Header{}
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = contentLengths()[5]
	h.Add("Content-Type", "text/plain")
	h.Add("Content-Length", "6")
	if len(contentTypeJSON) != 1 || contentTypeJSON[0] != "application/json" || contentLengths()[5][0] != "5" ||
		len(contentLengths()[5]) != 1 {
		t.Fatalf("shared values changed: %q %q", contentTypeJSON, contentLengths()[5])
	}
}

// TestProblemKindEncoding checks every code's pre-encoded members against
// the body built member by member.
func TestProblemKindEncoding(t *testing.T) {
	for _, code := range problemCodes {
		pk := kindOf(code)
		status, title := problemStatus(code)
		var want strings.Builder
		want.WriteString(`{"type":"` + typeBase + code + `","title":"` + title + `","status":` + strconv.Itoa(status) + `,"detail":`)
		if got := string(pk.head); got != want.String() {
			t.Errorf("%s: head %s, want %s", code, got, want.String())
		}
		if got, want := string(pk.tail), `,"code":"`+code+`"`; got != want {
			t.Errorf("%s: tail %s, want %s", code, got, want)
		}
		if pk.status != status || pk.title != title || pk.typ != typeBase+code || pk.code != code {
			t.Errorf("%s: kind %+v", code, pk)
		}
	}
}
