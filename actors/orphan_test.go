package actors

import (
	"errors"
	"net/http"
	"testing"

	"allot/actors/domain"
)

// A finished reservation outlives its deleted resource until retention. A
// repeat of the transition that finished it is the owner's 200 (unchanged,
// from committed state, nothing proposed) and anyone else's 403, as it is
// while the resource exists; any other move is invalid_state.
func TestOrphanedReservationTransitions(t *testing.T) {
	e, log := newTestEngine(t, Config{})
	putVoucher(t, e, "v1", 5, 900)
	out, err := reserve(e, "v1", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := domain.Principal{User: "alice"}
	cancelled, err := transition(e, out.Reservation.ID, domain.StatusCancelled, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteResource(t.Context(), "v1"); err != nil {
		t.Fatal(err)
	}
	var before [32]byte
	log.View(func(st *domain.State) { before = st.Hash() })

	rid := out.Reservation.ID
	key := &domain.IdemKey{Key: "k1"}
	for _, tc := range []struct {
		name string
		to   domain.Status
		who  domain.Principal
		idem *domain.IdemKey
		want error
	}{
		{"owner repeats cancel", domain.StatusCancelled, alice, nil, nil},
		{"admin repeats cancel", domain.StatusCancelled, admin, nil, nil},
		{"owner repeats with a key", domain.StatusCancelled, alice, key, nil},
		{"the same key again", domain.StatusCancelled, alice, key, nil},
		{"other user", domain.StatusCancelled, domain.Principal{User: "mallory"}, nil, domain.ErrPermissionDenied},
		{"other user confirm", domain.StatusConfirmed, domain.Principal{User: "mallory"}, nil, domain.ErrPermissionDenied},
		{"owner confirm", domain.StatusConfirmed, alice, nil, domain.ErrInvalidState},
		{"admin complete", domain.StatusCompleted, admin, nil, domain.ErrInvalidState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Transition(t.Context(), domain.TransitionCommand{ReservationID: rid, To: tc.to, Caller: tc.who, Idem: tc.idem})
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil || got.Code != http.StatusOK || got.Reservation != cancelled.Reservation {
				t.Fatalf("got %+v %v, want 200 with %+v", got, err, cancelled.Reservation)
			}
		})
	}
	var after [32]byte
	log.View(func(st *domain.State) { after = st.Hash() })
	if after != before {
		t.Fatal("answers about an orphaned reservation changed the state")
	}
	log.check(t)
}
