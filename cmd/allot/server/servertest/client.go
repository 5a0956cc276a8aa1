package servertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"allot/httpapi"
	"allot/httpapi/openapicheck"
)

// Client sends API requests to one node, as one user with one role, with a
// token minted from Secret.
type Client struct {
	c          *Cluster
	node       *Node
	user, role string
}

// Response is an API answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the JSON body into out.
func (r *Response) Decode(out any) error {
	if err := json.Unmarshal(r.Body, out); err != nil {
		return fmt.Errorf("decode %d %s: %w", r.Status, r.Body, err)
	}
	return nil
}

// Client returns a client of node i acting as user "admin" with the admin
// role; As switches the user.
func (c *Cluster) Client(i int) *Client {
	return &Client{c: c, node: c.Node(i), user: "admin", role: httpapi.RoleAdmin}
}

// As returns a client of the same node acting as user with role (httpapi.RoleUser,
// httpapi.RoleAdmin).
func (cl *Client) As(user, role string) *Client {
	return &Client{c: cl.c, node: cl.node, user: user, role: role}
}

// Token returns a bearer token for user with role, valid for an hour.
func (c *Cluster) Token(user, role string) string {
	c.t.Helper()
	tok, err := c.token(user, role)
	if err != nil {
		c.t.Fatalf("servertest: %v", err)
	}
	return tok
}

func (c *Cluster) token(user, role string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{user, role}
	if tok, ok := c.tokens[k]; ok {
		return tok, nil
	}
	tok, err := httpapi.MintToken(Secret, user, role, time.Hour)
	if err != nil {
		return "", fmt.Errorf("mint a token for %q: %w", user, err)
	}
	c.tokens[k] = tok
	return tok, nil
}

// Do sends one request. body is nil, a []byte, a string or a value to
// marshal as JSON; header is name, value pairs. Safe from any goroutine.
func (cl *Client) Do(method, path string, body any, header ...string) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, cl.node.URL()+path, rd)
	if err != nil {
		return nil, err
	}
	tok, err := cl.c.token(cl.user, cl.role)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := cl.c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		cl.c.checkOpenAPI(req, resp, b)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// checkOpenAPI reports (without stopping the test) an answer that
// docs/openapi.yaml does not allow: the description is checked against
// real nodes under faults here, as against the handlers in httpapi's tests.
func (c *Cluster) checkOpenAPI(req *http.Request, resp *http.Response, body []byte) {
	spec, err := openapicheck.Load()
	if err == nil {
		err = spec.Check(openapicheck.Answer{Request: req, Status: resp.StatusCode, Header: resp.Header, Body: body})
	}
	if err != nil {
		c.t.Errorf("servertest: %v\nbody: %.500s", err, body)
	}
}

// Must sends one request and fails the test unless it is answered with
// status want.
func (cl *Client) Must(method, path string, body any, want int, header ...string) *Response {
	cl.c.t.Helper()
	r, err := cl.Do(method, path, body, header...)
	if err != nil {
		cl.c.t.Fatalf("servertest: %s %s on %s: %v", method, path, cl.node.id, err)
	}
	if r.Status != want {
		cl.c.t.Fatalf("servertest: %s %s on %s: %d %s, want %d", method, path, cl.node.id, r.Status, r.Body, want)
	}
	return r
}
