// Command sqlite-consumer keeps an order table in SQLite from an allot
// cluster's change stream: it long-polls GET /v1/events and writes each
// page's effects and the new offset in one transaction, so that it can be
// killed at any moment and started again without losing or doubling an
// order.
//
//	ALLOT_TOKEN=$(allot token --sub orders --role consumer) \
//	  go run ./examples/sqlite-consumer --url http://127.0.0.1:8080 --db orders.db
//
// It exits with status 3 when the events it needs were compacted away
// (410 offset_compacted): the database then misses changes. With --resync
// it rebuilds the orders from the current state instead and reads on from
// the head (docs/DOWNSTREAM.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"allot/examples/sqlite-consumer/feed"
	"allot/examples/sqlite-consumer/orders"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("sqlite-consumer", flag.ContinueOnError)
	urls := fs.String("url", "http://127.0.0.1:8080", "base URL of an allot node; several separated by commas")
	token := fs.String("token", "", "bearer token (a consumer token); default $ALLOT_TOKEN")
	dbPath := fs.String("db", "orders.db", "SQLite database file")
	shard := fs.Int("shard", 0, "shard to read")
	types := fs.String("types", "reservation.*", "event types to read (?type=); empty for all")
	wait := fs.Duration("wait", 30*time.Second, "long-poll wait (at most 60s)")
	limit := fs.Int("limit", 500, "events per page (at most 1000)")
	resync := fs.Bool("resync", false, "on 410 offset_compacted, rebuild the orders from the current state and read on from the head (default: stop, exit status 3)")
	verbose := fs.Bool("v", false, "log every page")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *token == "" {
		*token = os.Getenv("ALLOT_TOKEN")
	}
	if *token == "" {
		fmt.Fprintln(os.Stderr, "sqlite-consumer: no token: pass --token or set ALLOT_TOKEN (allot token --sub orders --role consumer)")
		return 2
	}

	cfg := feed.DefaultConfig()
	cfg.URLs = strings.Split(*urls, ",")
	cfg.Token, cfg.Shard, cfg.Types, cfg.Wait, cfg.Limit, cfg.Logger = *token, *shard, *types, *wait, *limit, log
	src, err := feed.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlite-consumer:", err)
		return 2
	}
	st, err := orders.Open(*dbPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlite-consumer:", err)
		return 1
	}
	defer st.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var ce *feed.CompactedError
	for {
		err = orders.Consume(ctx, src, st, *shard, log)
		if !*resync || !errors.As(err, &ce) {
			break
		}
		log.Warn("the events this database needs are gone; rebuilding it from the current state", "err", err)
		if _, err = orders.Resync(ctx, src, st, *shard, log); err != nil {
			break
		}
	}
	switch {
	case ctx.Err() != nil:
		log.Info("stopped")
		return 0
	case errors.As(err, &ce):
		log.Error("the events this database needs are gone: it misses changes; run again with --resync to rebuild it from the current state (docs/DOWNSTREAM.md)",
			"err", err, "db", *dbPath)
		return 3
	default:
		log.Error("stopped", "err", err)
		return 1
	}
}
