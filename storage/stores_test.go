package storage

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

func TestStoresLayoutAndReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{RaftDir, SnapshotsDir} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); !fi.IsDir() || perm != 0o700 {
			t.Fatalf("%s: mode %v, want a 0700 directory", sub, fi.Mode())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, RaftDir, RaftDBFile)); err != nil {
		t.Fatal(err)
	}
	if has, err := s.HasExistingState(); err != nil || has {
		t.Fatalf("fresh stores: HasExistingState = %v, %v", has, err)
	}

	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("one")},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte("two")},
	}
	if err := s.LogStore().StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.StableStore().SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	sink, err := s.SnapshotStore().Create(raft.SnapshotVersionMax, 2, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write([]byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if has, err := s.HasExistingState(); err != nil || !has {
		t.Fatalf("reopened stores: HasExistingState = %v, %v", has, err)
	}
	var got raft.Log
	if err := s.LogStore().GetLog(2, &got); err != nil || string(got.Data) != "two" {
		t.Fatalf("log 2 after reopen: %q, %v", got.Data, err)
	}
	if term, err := s.StableStore().GetUint64([]byte("CurrentTerm")); err != nil || term != 1 {
		t.Fatalf("term after reopen: %d, %v", term, err)
	}
	snaps, err := s.SnapshotStore().List()
	if err != nil || len(snaps) != 1 || snaps[0].Index != 2 {
		t.Fatalf("snapshots after reopen: %v, %v", snaps, err)
	}
	_, rc, err := s.SnapshotStore().Open(snaps[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if data, err := io.ReadAll(rc); err != nil || !bytes.Equal(data, []byte("state")) {
		t.Fatalf("snapshot content %q, %v", data, err)
	}
}

func TestOpenRejectsEmptyDir(t *testing.T) {
	if _, err := Open("", io.Discard); err == nil {
		t.Fatal("Open with an empty data dir succeeded")
	}
}
