package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"allot/cmd/allot/server"
)

// health is `allot health`: it asks the node on this host for /healthz (or
// /readyz with --ready) and fails unless the answer is 200. Container
// images without a shell or curl run it as their health check. It reads
// the serve settings (flags, ALLOT_* and --config) for the address, so the
// same environment serves both commands.
func health(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String(configFlag, "", "the serve config file, for http-addr and tls-cert")
	def := server.DefaultConfig()
	httpAddr := fs.String("http-addr", def.HTTPAddr, "the node's --http-addr (an address of all interfaces is asked on loopback)")
	tlsCert := fs.String("tls-cert", "", "the node's --tls-cert: ask over HTTPS")
	ready := fs.Bool("ready", false, "ask /readyz (ready to serve) instead of /healthz (alive)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	serveFS, _ := newServeFlags(io.Discard)
	if err := parseSettings(fs, args, os.LookupEnv, flagNames(serveFS)); err != nil {
		return err
	}
	url, err := healthURL(*httpAddr, *tlsCert != "", *ready)
	if err != nil {
		return err
	}
	// The node is asked on this host by loopback, where its certificate
	// (issued for the name the others reach it by) does not match: the
	// probe checks liveness, not identity.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback probe
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s: %s", resp.Status, body)
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}

// healthURL is the URL of the probe on the node at httpAddr, asked on
// loopback when it binds all interfaces.
func healthURL(httpAddr string, https, ready bool) (string, error) {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", fmt.Errorf("--http-addr %q: %w", httpAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme, path := "http", "/healthz"
	if https {
		scheme = "https"
	}
	if ready {
		path = "/readyz"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + path, nil
}
