package scale

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"allot/cmd/allot/server"
)

// trailingLogs is how many entries the nodes keep after a snapshot. Fewer
// than the default, so that even a small run's log is compacted past what
// a new follower could replay and the install measured is a snapshot's.
const trailingLogs = 256

// nodeConfig is an embedded node as the bench's --nodes starts one (the
// production defaults, loopback, port 0, no per-address limit), with its
// data in dir. Only the nodes' own logs at warn and above reach logw.
func nodeConfig(id, dir string, bootstrap bool, secret []byte, logw io.Writer) server.Config {
	cfg := server.DefaultConfig()
	cfg.NodeID, cfg.DataDir = id, dir
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Bootstrap, cfg.AuthSecret = bootstrap, secret
	cfg.HTTP.IPRateLimit.PerSecond = 0
	cfg.Cluster.TrailingLogs = trailingLogs
	cfg.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// waitReady polls the node's readiness (what /readyz answers) and then
// check, until both pass or ctx ends.
func waitReady(ctx context.Context, srv *server.Server, check func() error) error {
	return poll(ctx, func() error {
		if err := srv.Node().Ready(); err != nil {
			return err
		}
		if check != nil {
			return check()
		}
		return nil
	})
}

// poll calls cond every 10 ms until it returns nil or ctx ends, then
// returns cond's last error with the context's.
func poll(ctx context.Context, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", context.Cause(ctx), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// shutdown stops srv within a bounded time.
func shutdown(srv *server.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return srv.Shutdown(ctx)
}
