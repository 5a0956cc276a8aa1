// Command allot runs a node of the allot reservation engine (`allot serve`)
// and mints API tokens (`allot token`). Every flag can also be set through
// the environment as ALLOT_<FLAG> (upper case, "-" as "_"); a flag given on
// the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"allot/cmd/allot/server"
	"allot/httpapi"
)

const usage = `allot: a reservation engine for flash crowds

usage:
  allot serve [--node-id n1] [--data-dir ./allot-data] [--http-addr 127.0.0.1:8080]
              [--raft-addr 127.0.0.1:7000] [--bootstrap] [--join http://HOST:PORT[,...]]
              [--auth-secret-file PATH] [--log-level info]
  allot token --sub USER [--role user|admin] [--ttl 24h] [--data-dir ./allot-data]
              [--auth-secret-file PATH]

The JWT secret comes from ALLOT_AUTH_SECRET, else --auth-secret-file, else
<data-dir>/auth.secret (created on the first serve).
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "allot:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(args []string, stderr io.Writer) error {
	def := server.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodeID := fs.String("node-id", def.NodeID, "node id, stable across restarts")
	dataDir := fs.String("data-dir", def.DataDir, "directory for the Raft log, snapshots and auth secret")
	httpAddr := fs.String("http-addr", def.HTTPAddr, "HTTP API listen address")
	raftAddr := fs.String("raft-addr", def.RaftAddr, "Raft listen address")
	bootstrap := fs.Bool("bootstrap", false, "found a new cluster with this node (implied when --join is empty)")
	join := fs.String("join", "", "comma-separated HTTP addresses of running nodes to ask to add this one")
	secretFile := fs.String("auth-secret-file", "", "file holding the JWT secret")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	raftTLSCert := fs.String("raft-tls-cert", "", "PEM certificate of this node for mutual TLS between nodes")
	raftTLSKey := fs.String("raft-tls-key", "", "PEM key of --raft-tls-cert")
	raftTLSCA := fs.String("raft-tls-ca", "", "PEM CA that signs every node's --raft-tls-cert")
	tlsCert := fs.String("tls-cert", "", "PEM certificate to serve the HTTP API over HTTPS with")
	tlsKey := fs.String("tls-key", "", "PEM key of --tls-cert")
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	joinURLs, err := parseJoin(*join)
	if err != nil {
		return err
	}
	if *bootstrap && len(joinURLs) > 0 {
		return errors.New("--bootstrap and --join exclude each other: found a new cluster or join a running one")
	}
	secret, err := server.LoadSecret(os.Getenv("ALLOT_AUTH_SECRET"), *secretFile, *dataDir, true)
	if err != nil {
		return err
	}
	cfg := def
	cfg.NodeID, cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = *nodeID, *dataDir, *httpAddr, *raftAddr
	// A lone node (no --join) founds its own cluster the first time; with
	// state in the data dir both flags are moot.
	cfg.Bootstrap = *bootstrap || len(joinURLs) == 0
	cfg.AuthSecret, cfg.Logger = secret, logger
	cfg.Cluster.TLSCertFile, cfg.Cluster.TLSKeyFile, cfg.Cluster.TLSCAFile = *raftTLSCert, *raftTLSKey, *raftTLSCA
	cfg.TLSCertFile, cfg.TLSKeyFile = *tlsCert, *tlsKey

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	if len(joinURLs) > 0 {
		if err := srv.Join(ctx, joinURLs); err != nil {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(err, srv.Shutdown(shutdownCtx))
		}
	}
	<-ctx.Done()
	stop()
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// parseJoin splits --join into base URLs ("host:port" is taken as http).
func parseJoin(list string) ([]string, error) {
	var urls []string
	for _, part := range strings.Split(list, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		u, err := httpapi.NormalizeBaseURL(part)
		if err != nil {
			return nil, fmt.Errorf("--join: %w", err)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "user id (required)")
	role := fs.String("role", "user", "user or admin")
	ttl := fs.Duration("ttl", 24*time.Hour, "validity")
	dataDir := fs.String("data-dir", server.DefaultConfig().DataDir, "data dir whose auth.secret signs the token")
	secretFile := fs.String("auth-secret-file", "", "file holding the JWT secret")
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("--sub is required")
	}
	if *role != "user" && *role != "admin" {
		return fmt.Errorf("--role must be user or admin, not %q", *role)
	}
	if *ttl <= 0 {
		return errors.New("--ttl must be positive")
	}
	secret, err := server.LoadSecret(os.Getenv("ALLOT_AUTH_SECRET"), *secretFile, *dataDir, false)
	if err != nil {
		return fmt.Errorf("%w (start `allot serve` once, or set ALLOT_AUTH_SECRET)", err)
	}
	tok, err := httpapi.MintToken(secret, *sub, *role, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// parseWithEnv parses args, then fills every flag not given on the command
// line from ALLOT_<FLAG>.
func parseWithEnv(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "ALLOT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}
