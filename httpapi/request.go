package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// Paging bounds of the list endpoints.
const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
	maxCursorLen     = 256
)

// readBody reads the whole request body into a pooled buffer; release it
// with s.putBuf once the bytes are no longer needed. Over MaxBodyBytes is
// errPayloadTooLarge, decided from Content-Length when the client sent one.
func (s *Server) readBody(c *gin.Context) (*bytes.Buffer, error) {
	if c.Request.ContentLength > s.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("body of %d bytes is over the limit of %d: %w",
			c.Request.ContentLength, s.cfg.MaxBodyBytes, errPayloadTooLarge)
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	var err error
	if c.Request.ContentLength >= 0 {
		// net/http ends the body at its Content-Length, checked above, so
		// the limit cannot trip: read it as it is, without a MaxBytesReader
		// per request.
		_, err = buf.ReadFrom(c.Request.Body)
	} else {
		_, err = buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes))
	}
	if err != nil {
		s.putBuf(buf)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("body is over the limit of %d bytes: %w", s.cfg.MaxBodyBytes, errPayloadTooLarge)
		}
		return nil, bodyReadError(c, err)
	}
	return buf, nil
}

// bodyReadError turns a failed body read into a problem. The error text of
// net/http names the sockets ("read tcp 10.0.0.1:8080->..."), so it is
// never passed on: a read deadline passing (the server's ReadTimeout, a
// client that stalled mid-body) is 408, anything else a generic 400. The
// connection is closed after either, since the body was not read through.
func bodyReadError(c *gin.Context, err error) error {
	c.Header("Connection", "close")
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("the request body did not arrive in time: %w", errRequestTimeout)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the request body ended before its Content-Length: %w", domain.ErrInvalidArgument)
	}
	return fmt.Errorf("the request body could not be read: %w", domain.ErrInvalidArgument)
}

func (s *Server) putBuf(b *bytes.Buffer) {
	if int64(b.Cap()) <= 2*s.cfg.MaxBodyBytes {
		s.bufs.Put(b)
	}
}

// decodeJSON decodes exactly one JSON value into v: unknown fields, wrong
// types, trailing data, duplicate keys and field names in the wrong case
// are invalid_argument.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON body: %v: %w", err, domain.ErrInvalidArgument)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("malformed JSON body: data after the JSON value: %w", domain.ErrInvalidArgument)
	}
	return checkStrict(data, v)
}

// writeJSON answers v encoded with encoding/json (the cold paths; the
// reservation, the hot path, is encoded by hand). An error means nothing
// was written.
func (s *Server) writeJSON(c *gin.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding response: %w", err)
	}
	c.Data(status, "application/json", b)
	return nil
}

// idemKey reads the Idempotency-Key header: nil without one; the key must
// be 1-255 printable ASCII characters and sent once. The fingerprint binds
// it to this endpoint and body, so a reuse elsewhere is detectable.
func idemKey(c *gin.Context, body []byte) (*domain.IdemKey, error) {
	vals := c.Request.Header.Values(headerIdemKey)
	if len(vals) == 0 {
		return nil, nil
	}
	if len(vals) > 1 || !printableASCII(vals[0], domain.MaxIdemKeyLen) {
		return nil, fmt.Errorf("%s must be sent once, as 1-%d printable ASCII characters: %w",
			headerIdemKey, domain.MaxIdemKeyLen, domain.ErrInvalidArgument)
	}
	k := &domain.IdemKey{Key: vals[0]}
	method, path := c.Request.Method, c.Request.URL.Path
	var sum [sha256.Size]byte
	if len(method)+len(path)+2+len(body) <= maxStackFingerprint {
		// The common small write: hashed from the stack, no allocation.
		var buf [maxStackFingerprint]byte
		b := append(append(buf[:0], method...), '\n')
		b = append(append(b, path...), '\n')
		sum = sha256.Sum256(append(b, body...))
	} else {
		h := sha256.New()
		io.WriteString(h, method)
		h.Write([]byte{'\n'})
		io.WriteString(h, path)
		h.Write([]byte{'\n'})
		h.Write(body)
		h.Sum(sum[:0])
	}
	copy(k.Fingerprint[:], sum[:])
	return k, nil
}

// maxStackFingerprint is the longest method, path and body that idemKey
// hashes from a stack buffer.
const maxStackFingerprint = 512

// consistency parses ?consistency=.
func consistency(c *gin.Context) (domain.Consistency, error) {
	return domain.ParseConsistency(c.Query("consistency"))
}

// pageLimit parses ?limit= (default 100, 1-1000).
func pageLimit(c *gin.Context) (int, error) {
	s, ok := c.GetQuery("limit")
	if !ok {
		return defaultPageLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPageLimit {
		return 0, fmt.Errorf("limit must be an integer from 1 to %d: %w", maxPageLimit, domain.ErrInvalidArgument)
	}
	return n, nil
}

// cursor parses ?after=.
func cursor(c *gin.Context) (string, error) {
	after := c.Query("after")
	if len(after) > maxCursorLen {
		return "", fmt.Errorf("after is at most %d bytes: %w", maxCursorLen, domain.ErrInvalidArgument)
	}
	return after, nil
}

// Times and dates are limited to the years 1970-2261: what Unix
// nanoseconds (int64) can hold after the epoch. Dates share the range so
// that a night and the times around it are always representable together.
const (
	minYear = 1970
	maxYear = 2261
)

// parseTime parses an optional RFC 3339 time into Unix nanoseconds; ""
// is unset (0). Times must lie within minYear-maxYear, and the offset
// must be less than 24 hours with minutes below 60 (time.Parse accepts
// "+24:00" and "+23:60").
func parseTime(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err == nil {
		_, off := t.Zone()
		if off <= -86400 || off >= 86400 || !validOffsetMinutes(s) {
			err = errors.New("offset out of range")
		}
	}
	if err != nil || t.Year() < minYear || t.Year() > maxYear || t.UnixNano() <= 0 {
		return 0, fmt.Errorf("%s: %q is not an RFC 3339 time between %d and %d with an offset under 24h: %w",
			field, s, minYear, maxYear, domain.ErrInvalidArgument)
	}
	return t.UnixNano(), nil
}

// validOffsetMinutes reports whether the numeric offset that ends an RFC
// 3339 time (if any) has minutes 00-59.
func validOffsetMinutes(s string) bool {
	n := len(s)
	if n < 6 || (s[n-6] != '+' && s[n-6] != '-') || s[n-3] != ':' {
		return true // "Z"; time.Parse checked the shape
	}
	return s[n-2] < '6'
}

// parseDay parses a YYYY-MM-DD date of the years minYear-maxYear.
func parseDay(field, s string) (domain.Day, error) {
	d, err := domain.ParseDay(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	if y, _ := strconv.Atoi(s[:4]); y < minYear || y > maxYear {
		return 0, fmt.Errorf("%s: %q is not a date between %d and %d: %w", field, s, minYear, maxYear, domain.ErrInvalidArgument)
	}
	return d, nil
}

// validPathID reports whether id may name something in a path: a domain
// id that is not made of dots only ("." and ".." mean something else to
// every URL and file path library; "..." is refused with them so that the
// rule is simple).
func validPathID(id string) bool {
	return domain.ValidID(id) && strings.Trim(id, ".") != ""
}

// callContext bounds one engine call by Config.RequestTimeout. The
// context is shared with calls that started at nearly the same time
// (deadline.go) and is released by its own timer: there is nothing to
// cancel.
func (s *Server) callContext() context.Context {
	return s.deadlines.context(time.Now())
}

// read runs fn on committed state at the request's consistency level. A
// deadline passing on a read is unavailable: a read has no outcome to lose.
func (s *Server) read(c *gin.Context, fn func(*domain.State) error) error {
	cons, err := consistency(c)
	if err != nil {
		return err
	}
	// The request's own context: a read abandoned by its client stops
	// waiting (for a lease, for the log to apply) at once.
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.RequestTimeout)
	defer cancel()
	err = s.cfg.Reader.Read(ctx, cons, fn)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, domain.ErrOutcomeUnknown) {
		return fmt.Errorf("read did not finish: %v: %w", err, domain.ErrUnavailable)
	}
	return err
}
