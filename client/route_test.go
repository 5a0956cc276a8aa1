package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"allot/client"
)

// fakeNode answers writes as the leader n2 would (a follower forwards
// them) and GET /v1/cluster with leader's address.
func fakeNode(id string, leader *string, posts *atomic.Int64) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/cluster" {
			w.Header().Set("X-Allot-Node", id)
			fmt.Fprintf(w, `{"id":%q,"leader":{"id":"n2","http_addr":%q},"nodes":[{"id":"n2","http_addr":%q,"voter":true,"state":"Leader"}]}`,
				id, *leader, *leader)
			return
		}
		posts.Add(1)
		w.Header().Set("X-Allot-Node", "n2")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"id":"r1","status":"confirmed"}`)
	}))
}

// TestWritesFollowTheLeader: the first write goes to the first node, which
// forwards it; the answer names the leader, /v1/cluster gives its address,
// and later writes go there directly, until it cannot be reached.
func TestWritesFollowTheLeader(t *testing.T) {
	var leaderAddr string
	var atFollower, atLeader atomic.Int64
	follower := fakeNode("n1", &leaderAddr, &atFollower)
	defer follower.Close()
	leader := fakeNode("n2", &leaderAddr, &atLeader)
	defer leader.Close()
	leaderAddr = strings.TrimPrefix(leader.URL, "http://") // advertised as host:port

	c, err := client.New([]string{follower.URL, leader.URL}, client.Options{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := c.Confirm(ctx, "r1"); err != nil {
			t.Fatal(err)
		}
	}
	if atFollower.Load() != 1 || atLeader.Load() != 2 || c.LeaderURL() != leader.URL {
		t.Fatalf("writes at the follower %d, at the leader %d, leader URL %q: want 1, 2, %s",
			atFollower.Load(), atLeader.Load(), c.LeaderURL(), leader.URL)
	}
	leader.Close()
	if _, err := c.Confirm(ctx, "r1"); err != nil {
		t.Fatalf("with the leader gone: %v", err)
	}
	if _, err := c.Confirm(ctx, "r1"); err != nil {
		t.Fatalf("with the leader gone: %v", err)
	}
	if atFollower.Load() != 3 {
		t.Errorf("writes at the follower %d, want 3: the unreachable leader is left for the other node", atFollower.Load())
	}
}
