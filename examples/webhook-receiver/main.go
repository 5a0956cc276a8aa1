// Command webhook-receiver takes allot's webhook deliveries: it checks
// each batch's Standard Webhooks signature, writes the events to a SQLite
// order book (the same one examples/sqlite-consumer keeps), deduplicated
// by offset, and acknowledges a batch only after it committed.
//
//	WEBHOOK_SECRET=... go run ./examples/webhook-receiver --addr 127.0.0.1:9090 --db hooks.db
//
// and register it with PUT /v1/webhooks/{id} {"url": "http://127.0.0.1:9090/webhook", "secret": "..."}.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"allot/examples/sqlite-consumer/orders"
	"allot/examples/webhook-receiver/verify"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("webhook-receiver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "address to listen on")
	path := fs.String("path", "/webhook", "URL path deliveries are posted to")
	secret := fs.String("secret", "", "the webhook's secret, as given to allot; default $WEBHOOK_SECRET")
	dbPath := fs.String("db", "hooks.db", "SQLite database file")
	tolerance := fs.Duration("tolerance", verify.DefaultTolerance, "how far a delivery's timestamp may be from now")
	cert := fs.String("tls-cert", "", "serve HTTPS with this certificate (and --tls-key)")
	key := fs.String("tls-key", "", "the certificate's key")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *secret == "" {
		*secret = os.Getenv("WEBHOOK_SECRET")
	}
	if *secret == "" {
		fmt.Fprintln(os.Stderr, "webhook-receiver: no secret: pass --secret or set WEBHOOK_SECRET")
		return 2
	}
	st, err := orders.Open(*dbPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhook-receiver:", err)
		return 1
	}
	defer st.Close()

	mux := http.NewServeMux()
	mux.Handle(*path, &receiver{v: &verify.Verifier{Secret: []byte(*secret), Tolerance: *tolerance}, st: st, log: log})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() {
		log.Info("listening", "addr", *addr, "path", *path, "db", *dbPath)
		if *cert != "" {
			errc <- srv.ListenAndServeTLS(*cert, *key)
		} else {
			errc <- srv.ListenAndServe()
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-errc:
		log.Error("serving", "err", err)
		return 1
	case <-ctx.Done():
	}
	// In-flight deliveries finish (and commit) before the database closes.
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutting down", "err", err)
		return 1
	}
	return 0
}
