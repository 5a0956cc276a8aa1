package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Join asks the running nodes at urls (HTTP base URLs; any member will do,
// a follower forwards to the leader) to add this node as a voter, trying
// them in turn until one does, a refusal shows that retrying cannot help
// (bad credentials or arguments), or ctx ends (bounded by
// Config.JoinTimeout). A node that already had Raft state when it started
// is a member already and does not ask.
func (s *Server) Join(ctx context.Context, urls []string) error {
	if s.node.HadState() {
		s.log.Info("node has raft state; not joining again", "node", s.cfg.NodeID)
		return nil
	}
	if len(urls) == 0 {
		return errors.New("join: no node to ask")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.JoinTimeout)
	defer cancel()
	body, err := json.Marshal(map[string]string{
		"id": s.cfg.NodeID, "raft_addr": s.node.RaftAddr(), "http_addr": s.node.HTTPAddr(),
	})
	if err != nil {
		return err
	}
	// The shared secret is what admits a node: it signs its own admin token.
	tok, err := s.nodeToken(s.cfg.JoinTimeout + time.Minute)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	tr := &http.Transport{TLSClientConfig: s.peerTLS}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	wait := 200 * time.Millisecond
	for {
		var lastErr error
		for _, u := range urls {
			retry, err := askToJoin(ctx, client, u, tok, body)
			if err == nil {
				s.log.Info("joined the cluster", "node", s.cfg.NodeID, "via", u)
				return nil
			}
			if !retry {
				return fmt.Errorf("join via %s: %w", u, err)
			}
			s.log.Warn("join attempt failed; retrying", "via", u, "error", err)
			lastErr = err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("join: gave up: %w (last attempt: %v)", ctx.Err(), lastErr)
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// askToJoin sends one POST /v1/cluster/nodes; retry tells whether another
// attempt may succeed (no leader yet, leadership changing, node down).
func askToJoin(ctx context.Context, client *http.Client, base, tok string, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/cluster/nodes", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK:
		return false, nil
	case resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode >= 500:
		return true, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return false, fmt.Errorf("refused: %s: %s", resp.Status, bytes.TrimSpace(msg))
}
