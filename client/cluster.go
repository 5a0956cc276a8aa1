package client

import (
	"context"
	"net/http"
	"net/url"
)

// Cluster reads GET /v1/cluster from a node (any role) and learns from it
// where the leader is.
func (c *Client) Cluster(ctx context.Context, opts ...CallOption) (*ClusterInfo, error) {
	info := new(ClusterInfo)
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/cluster", out: info, self: true}, opts); err != nil {
		return nil, err
	}
	c.route.learn(info)
	return info, nil
}

// WithStateHash asks Cluster for the answering node's state hash (admin).
func WithStateHash() CallOption {
	return func(c *call) {
		if c.query == nil {
			c.query = url.Values{}
		}
		c.query.Set("hash", "true")
	}
}

// Member is a node to add to the cluster.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// AddNode adds m as a voter (admin); it answers the leader's view once
// the node is a member.
func (c *Client) AddNode(ctx context.Context, m Member, opts ...CallOption) (*ClusterInfo, error) {
	info := new(ClusterInfo)
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/cluster/nodes", body: m, out: info}, opts); err != nil {
		return nil, err
	}
	return info, nil
}

// RemoveNode removes node id from the cluster (admin); refused with
// domain.ErrInvalidState when the rest would have no quorum.
func (c *Client) RemoveNode(ctx context.Context, id string, opts ...CallOption) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/cluster/nodes/" + url.PathEscape(id)}, opts)
}
