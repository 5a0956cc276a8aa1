package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"allot/actors/domain"
)

// TestSnapshotWebhooks: webhooks (spec, secret, cursor, paused) travel in
// version-5 snapshots even without a change stream, restore to the same
// state, and a webhook record twice, or in a version-4 stream, is
// corruption. A state without webhooks writes no webhook record.
func TestSnapshotWebhooks(t *testing.T) {
	st, _ := history(t, 3, 200)
	if encode(t, st)[len(snapshotMagic)] == SnapshotVersion {
		t.Fatal("the history already needs version 5; the test shows nothing")
	}
	st.RaiseLogFormat(domain.BatchV4)
	for _, w := range []domain.Webhook{
		{ID: "orders", URL: "https://orders.example/in", Secret: "0123456789abcdef0123456789abcdef", Types: []string{"reservation.*"}},
		{ID: "sms", URL: "http://10.0.0.9:8080/hook", Secret: "fedcba9876543210fedcba9876543210xx", ResourcePrefix: "clinic-"},
	} {
		if err := st.Apply(&domain.Event{Type: domain.EvPutWebhook, At: st.LastTime() + 1, Hook: &domain.WebhookOp{Webhook: w}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Apply(&domain.Event{Type: domain.EvPauseWebhook, At: st.LastTime() + 1, Hook: &domain.WebhookOp{Webhook: domain.Webhook{ID: "sms"}, Paused: true}}); err != nil {
		t.Fatal(err)
	}
	data := encode(t, st)
	if data[len(snapshotMagic)] != SnapshotVersion {
		t.Fatalf("a state with webhooks written as version %d", data[len(snapshotMagic)])
	}
	got, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != st.Hash() || got.WebhookCount() != 2 {
		t.Fatalf("restored: equal hash %v, %d webhooks", got.Hash() == st.Hash(), got.WebhookCount())
	}
	if w, _ := got.Webhook("sms"); !w.Paused || w.ResourcePrefix != "clinic-" || len(w.Secret) != 34 {
		t.Fatalf("restored %+v", w)
	}

	// The second webhook record again, before the end record.
	var rec []byte
	w, _ := st.Webhook("sms")
	payload := domain.AppendWebhook(nil, &w)
	rec = append(binary.AppendUvarint([]byte{recWebhook}, uint64(len(payload))), payload...)
	at := bytes.Index(data, rec)
	if at < 0 {
		t.Fatal("no webhook record in the stream")
	}
	reseal := func(b []byte) []byte {
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	}
	dup := reseal(append(append(bytes.Clone(data[:at]), rec...), data[at:len(data)-4]...))
	wantCorrupt(t, dup, "webhook twice")
	old := bytes.Clone(data[:len(data)-4])
	old[len(snapshotMagic)] = snapshotVersionNoEvents
	wantCorrupt(t, reseal(old), "webhook record in a version 4 stream")
}
