//go:build !linux

package disk

import "os"

// datasync is fsync where there is no fdatasync, as bbolt does.
func datasync(f *os.File) error { return f.Sync() }
