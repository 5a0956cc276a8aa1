// Command allot runs a node of the allot reservation engine (`allot serve`),
// mints API tokens (`allot token`) and probes a node on this host (`allot
// health`, the health check of a container image). Every flag can also be
// set through the environment as ALLOT_<FLAG> (upper case, "-" as "_") and
// as a key of the same name in the YAML file of --config: flag > env > file
// > default.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
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
              [--bootstrap-expect N] [--advertise-host HOST] [--auth-secret-file PATH] [--log-level info] [--config FILE]
              [--rate-limit 100] [--admin-rate-limit 0] [--ip-rate-limit 1000]
              [--max-token-ttl 720h] [--max-body 65536] [--token-cache-size 16384]
              [--read-header-timeout 5s] [--read-timeout 15s] [--write-timeout 30s]
              [--idle-timeout 2m] [--retention 720h] [--event-retention 168h]
              [--jwks-file PATH --jwt-issuer ISS [--jwt-audience AUD]] [--tls-cert PEM --tls-key PEM]
              [--raft-tls-cert PEM --raft-tls-key PEM --raft-tls-ca PEM]
  allot token (--sub USER | --prefix P [--count N]) [--role user|admin|consumer] [--ttl 24h]
              [--data-dir ./allot-data] [--auth-secret-file PATH] [--max-token-ttl 720h] [--config FILE]
  allot health [--ready] [--http-addr 127.0.0.1:8080] [--tls-cert PEM] [--timeout 3s] [--config FILE]

Every flag is also ALLOT_<FLAG> in the environment and a key of the YAML
file of --config; a flag beats the environment, which beats the file.

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
	case "health":
		return health(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// serveOpts are the settings of `allot serve`. To add one: a field here, a
// line in newServeFlags (its name is also the env variable and the config
// file key) and its use in config or serve.
type serveOpts struct {
	configFile string
	nodeID     string
	dataDir    string
	httpAddr   string
	raftAddr   string
	advertise  string
	bootstrap  bool
	expect     int
	join       string
	secretFile string
	logLevel   string

	rateLimit      float64
	adminRateLimit float64
	ipRateLimit    float64
	maxTokenTTL    time.Duration
	maxBody        int64
	tokenCacheSize int

	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration

	retention      time.Duration
	eventRetention time.Duration

	jwksFile                          string
	jwtIssuer, jwtAudience, jwtPrefix string
	// Transport security: mutual TLS between nodes, HTTPS for the API.
	raftTLSCert, raftTLSKey, raftTLSCA string
	tlsCert, tlsKey                    string
}

// newServeFlags declares every serve flag, with the defaults of
// server.DefaultConfig.
func newServeFlags(stderr io.Writer) (*flag.FlagSet, *serveOpts) {
	def := server.DefaultConfig()
	o := &serveOpts{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.configFile, configFlag, "", "YAML file with any of these settings (keys are the flag names)")
	fs.StringVar(&o.nodeID, "node-id", def.NodeID, "node id, stable across restarts")
	fs.StringVar(&o.dataDir, "data-dir", def.DataDir, "directory for the Raft log, snapshots and auth secret")
	fs.StringVar(&o.httpAddr, "http-addr", def.HTTPAddr, "HTTP API listen address")
	fs.StringVar(&o.raftAddr, "raft-addr", def.RaftAddr, "Raft listen address")
	fs.StringVar(&o.advertise, "advertise-host", "", "host name or IP the other nodes reach this one at, with the ports of --http-addr and --raft-addr (which may then be 0.0.0.0); empty = the bound addresses")
	fs.BoolVar(&o.bootstrap, "bootstrap", false, "found a new cluster with this node (implied when --join is empty)")
	fs.IntVar(&o.expect, "bootstrap-expect", 0, "found the cluster once this many nodes (this one and those in --join) are up; 0 = off")
	fs.StringVar(&o.join, "join", "", "comma-separated HTTP addresses of running nodes to ask to add this one")
	fs.StringVar(&o.secretFile, "auth-secret-file", "", "file holding the JWT secret")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")

	h := def.HTTP
	fs.Float64Var(&o.rateLimit, "rate-limit", h.RateLimit.PerSecond, "per-user requests/s on /v1 (burst twice that); 0 = off")
	fs.Float64Var(&o.adminRateLimit, "admin-rate-limit", h.AdminRateLimit.PerSecond, "the same for admin and consumer tokens; 0 = off")
	fs.Float64Var(&o.ipRateLimit, "ip-rate-limit", h.IPRateLimit.PerSecond, "per-client-address requests/s on /v1, checked before the token (burst twice that); 0 = off")
	fs.DurationVar(&o.maxTokenTTL, "max-token-ttl", h.MaxTokenTTL, "tokens whose exp lies further ahead are refused; 0 = no bound")
	fs.Int64Var(&o.maxBody, "max-body", h.MaxBodyBytes, "largest request body in bytes")
	fs.IntVar(&o.tokenCacheSize, "token-cache-size", h.TokenCacheSize, "verified tokens remembered until their exp; 0 = off")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", h.Timeouts.ReadHeader, "HTTP server: time to read a request's headers")
	fs.DurationVar(&o.readTimeout, "read-timeout", h.Timeouts.Read, "HTTP server: time to read a whole request")
	fs.DurationVar(&o.writeTimeout, "write-timeout", h.Timeouts.Write, "HTTP server: time to write a response (above the 10s request timeout)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", h.Timeouts.Idle, "HTTP server: how long an idle keep-alive connection stays open")
	fs.DurationVar(&o.retention, "retention", def.Retention, "finished reservations leave the state this long after they finished")
	fs.DurationVar(&o.eventRetention, "event-retention", def.EventRetention, "how long events are kept")
	fs.StringVar(&o.jwksFile, "jwks-file", "", "JWKS file of an identity provider whose RS256/EdDSA tokens are accepted too")
	fs.StringVar(&o.jwtIssuer, "jwt-issuer", "", "iss the identity provider's tokens must carry (required with --jwks-file)")
	fs.StringVar(&o.jwtAudience, "jwt-audience", "", "value the identity provider's tokens must have in aud (recommended with --jwks-file)")
	fs.StringVar(&o.jwtPrefix, "jwt-subject-prefix", h.SubjectPrefix, "put before the identity provider's sub to make the user name; local tokens may not use it")
	fs.StringVar(&o.raftTLSCert, "raft-tls-cert", "", "PEM certificate of this node for mutual TLS between nodes")
	fs.StringVar(&o.raftTLSKey, "raft-tls-key", "", "PEM key of --raft-tls-cert")
	fs.StringVar(&o.raftTLSCA, "raft-tls-ca", "", "PEM CA that signs every node's --raft-tls-cert")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate to serve the HTTP API over HTTPS with")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	return fs, o
}

// burst is a rate limit's bucket size: twice the rate, at least 1.
func burst(perSecond float64) int { return max(1, int(math.Ceil(2*perSecond))) }

// config turns the settings into a node's Config (the secret and logger
// aside).
func (o *serveOpts) config(bootstrap bool) server.Config {
	cfg := server.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = o.nodeID, o.dataDir, o.httpAddr, o.raftAddr
	cfg.AdvertiseHost = o.advertise
	cfg.Bootstrap = bootstrap
	cfg.BootstrapExpect = o.expect
	cfg.Retention, cfg.EventRetention = o.retention, o.eventRetention
	cfg.Cluster.TLSCertFile, cfg.Cluster.TLSKeyFile, cfg.Cluster.TLSCAFile = o.raftTLSCert, o.raftTLSKey, o.raftTLSCA
	cfg.TLSCertFile, cfg.TLSKeyFile = o.tlsCert, o.tlsKey
	h := &cfg.HTTP
	h.RateLimit.PerSecond, h.RateLimit.Burst = o.rateLimit, burst(o.rateLimit)
	h.AdminRateLimit.PerSecond, h.AdminRateLimit.Burst = o.adminRateLimit, burst(o.adminRateLimit)
	h.IPRateLimit.PerSecond, h.IPRateLimit.Burst = o.ipRateLimit, burst(o.ipRateLimit)
	h.MaxTokenTTL, h.MaxBodyBytes, h.TokenCacheSize = o.maxTokenTTL, o.maxBody, o.tokenCacheSize
	h.Issuer, h.Audience, h.SubjectPrefix = o.jwtIssuer, o.jwtAudience, o.jwtPrefix
	h.Timeouts = httpapi.Timeouts{ReadHeader: o.readHeaderTimeout, Read: o.readTimeout, Write: o.writeTimeout, Idle: o.idleTimeout}
	return cfg
}

// check refuses settings that make no sense before anything starts.
func (o *serveOpts) check() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read-header-timeout", o.readHeaderTimeout}, {"read-timeout", o.readTimeout},
		{"write-timeout", o.writeTimeout}, {"idle-timeout", o.idleTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("--%s must be positive, not %s", d.name, d.v)
		}
	}
	if rt := server.DefaultConfig().HTTP.RequestTimeout; o.writeTimeout <= rt {
		return fmt.Errorf("--write-timeout %s must exceed the request timeout (%s), so a write that runs to its deadline can still be answered", o.writeTimeout, rt)
	}
	switch {
	case o.rateLimit < 0 || o.adminRateLimit < 0 || o.ipRateLimit < 0:
		return errors.New("rate limits must not be negative (0 turns one off)")
	case o.maxTokenTTL < 0:
		return errors.New("--max-token-ttl must not be negative (0 = no bound)")
	case o.maxBody <= 0:
		return errors.New("--max-body must be positive")
	case o.tokenCacheSize < 0:
		return errors.New("--token-cache-size must not be negative (0 = off)")
	case o.retention < 0:
		return errors.New("--retention must not be negative (0 = keep finished reservations forever)")
	case o.eventRetention <= 0:
		return errors.New("--event-retention must be positive")
	case o.jwksFile != "" && o.jwtIssuer == "":
		return errors.New("--jwks-file needs --jwt-issuer: without it a token the identity provider issued to any application would be accepted")
	case o.jwksFile != "" && o.jwtPrefix == "":
		return errors.New("--jwt-subject-prefix must not be empty with --jwks-file: it keeps the identity provider's users apart from local ones")
	}
	return nil
}

func serve(args []string, stderr io.Writer) error {
	fs, o := newServeFlags(stderr)
	if err := parseSettings(fs, args, os.LookupEnv, nil); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	joinURLs, err := parseJoin(o.join)
	if err != nil {
		return err
	}
	if err := o.checkFounding(joinURLs); err != nil {
		return err
	}
	// A lone node (no --join, no --bootstrap-expect) founds its own cluster
	// the first time; with state in the data dir these flags are moot.
	cfg := o.config(o.bootstrap || (len(joinURLs) == 0 && o.expect == 0))
	if o.jwksFile != "" {
		if cfg.HTTP.PublicKeys, err = httpapi.LoadJWKS(o.jwksFile); err != nil {
			return fmt.Errorf("--jwks-file: %w", err)
		}
		if o.jwtAudience == "" {
			logger.Warn("--jwks-file without --jwt-audience: any token of the identity provider's issuer is accepted, whatever application it was issued to")
		}
	}
	secret, err := server.LoadSecret(os.Getenv("ALLOT_AUTH_SECRET"), o.secretFile, o.dataDir, true)
	if err != nil {
		return err
	}
	cfg.AuthSecret, cfg.Logger = secret, logger

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	if o.expect > 0 {
		if err := srv.AwaitFounding(ctx, joinURLs); err != nil {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if ctx.Err() != nil { // stopped while waiting for the other nodes: a clean stop
				logger.Info("stopped before the cluster was founded", "reason", err)
				return srv.Shutdown(shutdownCtx)
			}
			return errors.Join(err, srv.Shutdown(shutdownCtx))
		}
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

// checkFounding refuses combinations of --bootstrap, --join and
// --bootstrap-expect that cannot found or join a cluster, or could found
// two: with more than N addresses in --join, two disjoint sets of N nodes
// (a partition, slow DNS) could each see N blank nodes and found one.
func (o *serveOpts) checkFounding(joinURLs []string) error {
	distinct := len(slices.Compact(slices.Sorted(slices.Values(joinURLs))))
	switch {
	case o.bootstrap && len(joinURLs) > 0:
		return errors.New("--bootstrap and --join exclude each other: found a new cluster or join a running one")
	case o.expect < 0:
		return errors.New("--bootstrap-expect must not be negative (0 = off)")
	case o.expect > 0 && o.bootstrap:
		return errors.New("--bootstrap and --bootstrap-expect exclude each other: --bootstrap founds a cluster of this node alone")
	case o.expect == 1 && distinct > 0:
		return errors.New("--bootstrap-expect 1 and --join exclude each other: a cluster of one node has no peers to found it with (to found it, leave out --join; to join a running cluster, leave out --bootstrap-expect)")
	case o.expect > 1 && distinct < o.expect-1:
		return fmt.Errorf("--bootstrap-expect %d needs the other nodes in --join (this node's own address may be listed too); --join lists %d", o.expect, distinct)
	case o.expect > 1 && distinct > o.expect:
		return fmt.Errorf("--bootstrap-expect %d takes at most %d addresses in --join, the founding nodes (this node's own may be among them); --join lists %d: two sets of %d of them could found two clusters", o.expect, o.expect, distinct, o.expect)
	}
	return nil
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
	fs.String(configFlag, "", "the serve config file, for data-dir, auth-secret-file and max-token-ttl")
	sub := fs.String("sub", "", "user id (required unless --prefix)")
	prefix := fs.String("prefix", "", "mint --count tokens for users PREFIX1..PREFIXN instead of one for --sub")
	count := fs.Int("count", 1, "with --prefix: how many tokens, one per line")
	role := fs.String("role", httpapi.RoleUser, "user, admin or consumer (reads everything, writes nothing)")
	ttl := fs.Duration("ttl", 24*time.Hour, "validity")
	def := server.DefaultConfig()
	dataDir := fs.String("data-dir", def.DataDir, "data dir whose auth.secret signs the token")
	secretFile := fs.String("auth-secret-file", "", "file holding the JWT secret")
	maxTTL := fs.Duration("max-token-ttl", def.HTTP.MaxTokenTTL, "the servers' --max-token-ttl: a longer --ttl is refused")
	serveFS, _ := newServeFlags(io.Discard)
	if err := parseSettings(fs, args, os.LookupEnv, flagNames(serveFS)); err != nil {
		return err
	}
	switch {
	case *sub == "" && *prefix == "":
		return errors.New("--sub (or --prefix with --count) is required")
	case *sub != "" && *prefix != "":
		return errors.New("--sub and --prefix exclude each other: one user, or users PREFIX1..PREFIXN")
	case *count < 1:
		return errors.New("--count must be at least 1")
	case *count > 1 && *prefix == "":
		return errors.New("--count needs --prefix: the users are PREFIX1..PREFIXN")
	case *role != httpapi.RoleUser && *role != httpapi.RoleAdmin && *role != httpapi.RoleConsumer:
		return fmt.Errorf("--role must be user, admin or consumer, not %q", *role)
	case *ttl <= 0:
		return errors.New("--ttl must be positive")
	case *maxTTL > 0 && *ttl > *maxTTL:
		// Minting it anyway would hand out a token every node refuses.
		return fmt.Errorf("--ttl %s is above --max-token-ttl %s: the servers would refuse the token", *ttl, *maxTTL)
	}
	secret, err := server.LoadSecret(os.Getenv("ALLOT_AUTH_SECRET"), *secretFile, *dataDir, false)
	if err != nil {
		return fmt.Errorf("%w (start `allot serve` once, or set ALLOT_AUTH_SECRET)", err)
	}
	subs := []string{*sub}
	if *prefix != "" {
		subs = make([]string, *count)
		for i := range subs {
			subs[i] = *prefix + strconv.Itoa(i+1)
		}
	}
	out := bufio.NewWriter(stdout)
	for _, s := range subs {
		tok, err := httpapi.MintToken(secret, s, *role, *ttl)
		if err != nil {
			return fmt.Errorf("token for %q: %w", s, err)
		}
		out.WriteString(tok)
		out.WriteByte('\n')
	}
	return out.Flush()
}
