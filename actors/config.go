package actors

import (
	"log/slog"
	"time"
)

// Config tunes the engine. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// MaxBatch is the most events one Raft entry carries.
	MaxBatch int
	// MaxInflightBatches bounds the entries proposed but not yet applied.
	// While they are in flight, new events queue up and form the next, larger
	// batch: group commit that adds no wait under light load.
	MaxInflightBatches int
	// QueueSize is the proposer's queue of decided events; when full, actors
	// wait (back-pressure).
	QueueSize int
	// IdleTimeout passivates an actor that received nothing for this long.
	IdleTimeout time.Duration
	// ExpiryRetry is how soon an expiry whose event failed is tried again.
	ExpiryRetry time.Duration
	// Logger receives engine logs; nil discards them.
	Logger *slog.Logger
	// Clock is the wall clock leader time is read from; nil is the
	// machine's. See leaderClock for how steps of it are handled.
	Clock Clock
	// Retention is how long, in leader time, cancelled and expired
	// reservations stay in committed state after they finished; 0 keeps
	// them forever (fill leaves 0 alone). Only the leader's setting counts:
	// the prune event carries its cutoff (retention.go).
	Retention time.Duration
	// PruneInterval is how often the leader looks for reservations past
	// Retention.
	PruneInterval time.Duration
	// Events is this node's copy of the change stream, which the leader
	// delivers to webhooks from; nil delivers nothing (webhooks can still
	// be written).
	Events EventSource
	// Webhooks tunes webhook delivery; zero fields take the defaults.
	Webhooks WebhookConfig
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxBatch:           1024,
		MaxInflightBatches: 4,
		QueueSize:          16384,
		IdleTimeout:        2 * time.Minute,
		ExpiryRetry:        time.Second,
		Retention:          DefaultRetention,
		PruneInterval:      time.Minute,
		Webhooks:           DefaultWebhookConfig(),
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.MaxBatch <= 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxInflightBatches <= 0 {
		c.MaxInflightBatches = d.MaxInflightBatches
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ExpiryRetry <= 0 {
		c.ExpiryRetry = d.ExpiryRetry
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = d.PruneInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	c.Webhooks.fill()
}
