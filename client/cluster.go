package client

import (
	"context"
	"net/http"
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
