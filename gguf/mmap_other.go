//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gguf

import (
	"fmt"
	"io"
	"math"
	"os"
)

// mapFile reads the whole file where tamp does not use mmap; the File then
// holds an ordinary heap copy and Close has nothing to release.
func mapFile(fd *os.File, size int64) ([]byte, func([]byte) error, error) {
	if size < 0 || uint64(size) > math.MaxInt {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to read", size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(fd, data); err != nil {
		return nil, nil, err
	}
	return data, nil, nil
}
