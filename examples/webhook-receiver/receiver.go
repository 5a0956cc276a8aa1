package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"allot/examples/sqlite-consumer/feed"
	"allot/examples/sqlite-consumer/orders"
	"allot/examples/webhook-receiver/verify"
)

// maxBody bounds a delivery: a batch holds at most 100 events.
const maxBody = 16 << 20

// receiver handles allot's webhook deliveries: it verifies the signature,
// then writes the batch to the order book and answers 2xx only once that
// transaction committed. Delivery is at least once — a batch whose answer
// was lost, or one re-sent by a new leader from the committed cursor,
// comes again — so events are deduplicated by offset: the order book
// skips every event at or below the offset it already reflects.
type receiver struct {
	v   *verify.Verifier
	st  *orders.Store
	log *slog.Logger
}

// ack is the body of a 200: where the order book stands now.
type ack struct {
	Offset  int64 `json:"offset"`
	Applied int   `json:"applied"`
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Nothing of an unverified body is looked at, not even its JSON.
	if err := rc.v.Verify(r.Header, body); err != nil {
		rc.log.Warn("refused a delivery", "webhook_id", r.Header.Get(verify.HeaderID), "err", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var batch feed.Batch
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, "decoding the batch: "+err.Error(), http.StatusBadRequest)
		return
	}
	shard := 0
	if len(batch.Events) > 0 {
		shard = batch.Events[0].Shard
	}
	off, n, err := rc.st.Apply(r.Context(), shard, batch.Events, 0)
	if err != nil {
		// Not acknowledged: allot sends the batch again later.
		rc.log.Error("storing a delivery failed", "webhook_id", r.Header.Get(verify.HeaderID), "err", err)
		http.Error(w, fmt.Sprintf("storing the batch: %v", err), http.StatusInternalServerError)
		return
	}
	rc.log.Info("delivery stored", "webhook_id", r.Header.Get(verify.HeaderID), "events", len(batch.Events), "applied", n, "offset", off)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ack{Offset: off, Applied: n})
}
