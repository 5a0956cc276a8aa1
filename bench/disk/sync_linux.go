package disk

import (
	"os"
	"syscall"
)

// datasync is fdatasync, the call bbolt makes on Linux.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
