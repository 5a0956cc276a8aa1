package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"allot/actors/domain"
)

func setMember(id, raft, http string) domain.Event {
	return domain.Event{Type: domain.EvSetMember, At: t0, Member: domain.Member{ID: id, RaftAddr: raft, HTTPAddr: http}}
}

func removeMember(id string) domain.Event {
	return domain.Event{Type: domain.EvRemoveMember, At: t0, Member: domain.Member{ID: id}}
}

func TestMembers(t *testing.T) {
	st := newState(t, "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 1})
	empty := st.Hash()
	mustApply(t, st, setMember("n2", "127.0.0.1:7002", "http://127.0.0.1:8082"))
	mustApply(t, st, setMember("n1", "127.0.0.1:7001", "http://127.0.0.1:8081"))
	if st.Hash() == empty {
		t.Fatal("member records do not change the hash")
	}
	two := st.Hash()
	// Setting the same record again changes nothing; a new address replaces the old.
	mustApply(t, st, setMember("n1", "127.0.0.1:7001", "http://127.0.0.1:8081"))
	if st.Hash() != two {
		t.Fatal("setting the same record changed the state")
	}
	mustApply(t, st, setMember("n1", "127.0.0.1:7001", "http://127.0.0.1:9091"))
	if m, ok := st.Member("n1"); !ok || m.HTTPAddr != "http://127.0.0.1:9091" {
		t.Fatalf("n1 is %+v, %v", m, ok)
	}
	want := []domain.Member{
		{ID: "n1", RaftAddr: "127.0.0.1:7001", HTTPAddr: "http://127.0.0.1:9091"},
		{ID: "n2", RaftAddr: "127.0.0.1:7002", HTTPAddr: "http://127.0.0.1:8082"},
	}
	if got := st.Members(); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %+v", got)
	}
	c := st.Clone()
	mustApply(t, st, removeMember("n2"))
	if _, ok := st.Member("n2"); ok {
		t.Fatal("n2 still recorded")
	}
	if got := c.Members(); !reflect.DeepEqual(got, want) {
		t.Fatalf("removing from the original changed the clone: %+v", got)
	}

	for name, tc := range map[string]struct {
		ev   domain.Event
		want error
	}{
		"empty id":        {setMember("", "a:1", "http://a:2"), domain.ErrInvalidArgument},
		"bad id":          {setMember("n 1", "a:1", "http://a:2"), domain.ErrInvalidArgument},
		"no raft addr":    {setMember("n3", "", "http://a:2"), domain.ErrInvalidArgument},
		"no http addr":    {setMember("n3", "a:1", ""), domain.ErrInvalidArgument},
		"space in addr":   {setMember("n3", "a:1", "http://a b"), domain.ErrInvalidArgument},
		"long addr":       {setMember("n3", "a:1", "http://"+strings.Repeat("a", domain.MaxMemberAddrLen)), domain.ErrInvalidArgument},
		"remove unknown":  {removeMember("n9"), domain.ErrNotFound},
		"remove empty id": {removeMember(""), domain.ErrInvalidArgument},
	} {
		t.Run(name, func(t *testing.T) { mustRefuse(t, st, tc.ev, tc.want) })
	}
}

func TestMemberEventsRoundTrip(t *testing.T) {
	events := []domain.Event{
		setMember("n1", "127.0.0.1:7001", "http://127.0.0.1:8081"),
		removeMember("n2"),
		{Type: domain.EvSetMember, At: -5, ResourceID: "x", Member: domain.Member{ID: "a"}},
	}
	roundTrip(t, events)

	m := domain.Member{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "http://10.0.0.1:8080"}
	b := domain.AppendMember(nil, &m)
	if got, err := domain.DecodeMember(b); err != nil || got != m {
		t.Fatalf("member record: %+v, %v", got, err)
	}
	if _, err := domain.DecodeMember(b[:len(b)-1]); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("truncated member record: %v", err)
	}
	// Restoring from records gives the same state, members included.
	st := domain.NewState()
	mustApply(t, st, setMember("n1", "a:1", "http://a:2"))
	mustApply(t, st, setMember("n2", "b:1", "http://b:2"))
	restored := domain.NewState()
	_ = st.EachMember(func(m domain.Member) error { restored.LoadMember(m); return nil })
	restored.LoadLastTime(st.LastTime())
	if restored.Hash() != st.Hash() {
		t.Fatal("restored members hash differently")
	}
}
