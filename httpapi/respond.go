package httpapi

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
)

// Answers on the hot paths are written with header values built once.
// gin's c.Data allocates per answer a one-element slice for Content-Type,
// another for Content-Length, the length's string and the boxed renderer;
// at tens of thousands of rejections a second that is a good part of the
// garbage. Each shared slice has capacity 1, so that a later Header.Add
// appends to a copy instead of into another answer's header; nothing
// writes into a header value in place.
var (
	contentTypeJSON    = []string{"application/json"}
	contentTypeProblem = []string{"application/problem+json"}
)

// maxSharedLength is the longest body whose Content-Length value is
// shared; longer bodies format their own.
const maxSharedLength = 2048

// contentLengths are the Content-Length values of 0 to maxSharedLength,
// made on first use.
var contentLengths = sync.OnceValue(func() [][]string {
	vals := make([][]string, maxSharedLength+1)
	for n := range vals {
		vals[n] = []string{strconv.Itoa(n)}
	}
	return vals
})

// writeData is c.Data(status, <ct>, b) with shared header values: the same
// status, headers and body on the wire.
func writeData(c *gin.Context, status int, ct []string, b []byte) {
	if !bodyAllowed(status) {
		c.Data(status, ct[0], b)
		return
	}
	c.Status(status)
	h := c.Writer.Header()
	if len(h["Content-Type"]) == 0 {
		h["Content-Type"] = ct
	}
	if n := len(b); n > 0 {
		if n <= maxSharedLength {
			h["Content-Length"] = contentLengths()[n]
		} else {
			h["Content-Length"] = []string{strconv.Itoa(n)}
		}
	}
	if _, err := c.Writer.Write(b); err != nil {
		_ = c.Error(err) // as c.Data does
		c.Abort()
	}
}

// bodyAllowed is gin's rule for statuses that may carry a body.
func bodyAllowed(status int) bool {
	return status > 199 && status != http.StatusNoContent && status != http.StatusNotModified
}
