package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"allot/cmd/allot/server"
	"allot/httpapi"
)

// exampleNode is the single in-process node the examples run against,
// started by TestMain (examples have no *testing.T for servertest).
var exampleNode struct {
	url    string
	secret []byte
}

func TestMain(m *testing.M) {
	stop, err := startExampleNode()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the examples' node:", err)
		os.Exit(2)
	}
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the examples' node:", err)
	}
	os.Exit(code)
}

func startExampleNode() (stop func() error, err error) {
	dir, err := os.MkdirTemp("", "allot-client-example-")
	if err != nil {
		return nil, err
	}
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.AuthSecret = []byte("client-example-secret-0123456789abcdef")
	cfg.HTTP.RateLimit.PerSecond, cfg.HTTP.IPRateLimit.PerSecond = 0, 0
	srv, err := server.Start(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(ctx), os.RemoveAll(dir))
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Node().Ready() != nil {
		if time.Now().After(deadline) {
			return nil, errors.Join(errors.New("not ready in 30s"), stop())
		}
		time.Sleep(20 * time.Millisecond)
	}
	exampleNode.url, exampleNode.secret = "http://"+srv.HTTPAddr(), cfg.AuthSecret
	return stop, nil
}

// token is what `allot token --sub sub --role role` would print for the
// examples' node.
func token(sub, role string) string {
	tok, err := httpapi.MintToken(exampleNode.secret, sub, role, time.Hour)
	if err != nil {
		panic(err)
	}
	return tok
}
