// Package storage keeps allot's Raft state on disk: the log and stable store
// (raft-boltdb/v2 on bbolt), the file snapshot store, and the snapshot stream
// codec that turns committed domain state into bytes and back.
//
// Data-dir layout:
//
//	<data-dir>/
//	    raft/raft.db    Raft log entries and stable store (term, vote), one bbolt file
//	    snapshots/      raft.FileSnapshotStore: one directory per snapshot (meta.json,
//	                    state.bin in the format of WriteSnapshot); the newest 2 are kept
//	    events/events.db  the node's copy of the change stream (EventLog), one bbolt file
//
// Directories are created 0700 and files 0600: the log holds every user's
// reservations.
package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

const (
	// RaftDir is the directory under the data dir that holds RaftDBFile.
	RaftDir = "raft"
	// RaftDBFile is the bbolt file with the Raft log and stable store.
	RaftDBFile = "raft.db"
	// SnapshotsDir is the directory raft.FileSnapshotStore creates under
	// the data dir.
	SnapshotsDir = "snapshots"
	// SnapshotsRetained is how many snapshots are kept: the newest, plus one
	// to fall back on should it be unreadable.
	SnapshotsRetained = 2

	// logCacheSize is how many recent entries are kept in memory, so that
	// replicating fresh entries to followers does not read them back from
	// bbolt.
	logCacheSize = 512
	// openTimeout bounds waiting for bbolt's file lock: a second process
	// on the same data dir fails fast instead of hanging.
	openTimeout = time.Second
)

// Stores are the on-disk stores one Raft node needs. Close them only after
// raft.Shutdown has returned.
type Stores struct {
	dir   string
	bolt  *raftboltdb.BoltStore
	log   raft.LogStore
	snaps *raft.FileSnapshotStore
	evlog *EventLog
}

// Open opens (creating if needed) the stores under dataDir. logOutput
// receives the snapshot store's warnings and errors (hclog text lines).
func Open(dataDir string, logOutput io.Writer) (*Stores, error) {
	if dataDir == "" {
		return nil, errors.New("storage: empty data dir")
	}
	raftDir := filepath.Join(dataDir, RaftDir)
	for _, dir := range []string{dataDir, raftDir, filepath.Join(dataDir, SnapshotsDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: create %s: %w", dir, err)
		}
	}
	path := filepath.Join(raftDir, RaftDBFile)
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path: path,
		BoltOptions: &bbolt.Options{
			Timeout: openTimeout,
			// The freelist is rebuilt by scanning on open instead of being
			// written on every commit: cheaper appends, slower start.
			NoFreelistSync: true,
			FreelistType:   bbolt.FreelistMapType,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s (in use by another process?): %w", path, err)
	}
	log, err := raft.NewLogCache(logCacheSize, bolt)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("storage: log cache: %w", err)
	}
	if logOutput == nil {
		logOutput = os.Stderr
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, SnapshotsRetained, hclog.New(&hclog.LoggerOptions{
		Name:        "snapshot",
		Output:      logOutput,
		Level:       hclog.Warn,
		DisableTime: true,
	}))
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("storage: snapshot store: %w", err)
	}
	evlog, err := OpenEventLog(dataDir, nil)
	if err != nil {
		bolt.Close()
		return nil, err
	}
	return &Stores{dir: dataDir, bolt: bolt, log: log, snaps: snaps, evlog: evlog}, nil
}

// Dir is the data dir the stores were opened in.
func (s *Stores) Dir() string { return s.dir }

// LogStore holds the Raft log (cached in front of bbolt).
func (s *Stores) LogStore() raft.LogStore { return s.log }

// StableStore holds the current term and vote.
func (s *Stores) StableStore() raft.StableStore { return s.bolt }

// SnapshotStore holds the FSM snapshots.
func (s *Stores) SnapshotStore() raft.SnapshotStore { return s.snaps }

// Events holds the node's copy of the change stream.
func (s *Stores) Events() *EventLog { return s.evlog }

// HasExistingState reports whether the stores hold any Raft state (log,
// term or snapshot): a node with state must not be bootstrapped again.
func (s *Stores) HasExistingState() (bool, error) {
	return raft.HasExistingState(s.log, s.bolt, s.snaps)
}

// Close closes the bbolt files. The snapshot store holds no open files
// between snapshots.
func (s *Stores) Close() error {
	evErr := s.evlog.Close()
	if err := s.bolt.Close(); err != nil {
		return fmt.Errorf("storage: close raft db: %w", err)
	}
	if evErr != nil {
		return fmt.Errorf("storage: close events db: %w", evErr)
	}
	return nil
}
