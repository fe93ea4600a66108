//go:build unix

package residency

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// mapPages returns a page reader for checkTrees over a read-only mapping
// of the file f's n pages of pageSize bytes, which reads only the pages
// it is asked for, and a function that unmaps it. Where the file cannot be
// mapped, it reads the file page by page (readPage).
func mapPages(f *os.File, pageSize, n uint64) (page func(id uint64, whole bool) ([]byte, error), release func()) {
	data, err := syscall.Mmap(int(f.Fd()), 0, int(n*pageSize), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return readPage(f, pageSize, n), func() {}
	}
	return func(id uint64, whole bool) ([]byte, error) {
		at := id * pageSize
		size := uint64(16)
		if whole {
			size = (1 + uint64(binary.NativeEndian.Uint32(data[at+12:]))) * pageSize
		}
		if at+size > uint64(len(data)) {
			return nil, fmt.Errorf("page %d ends past the end of the file", id)
		}
		return data[at : at+size : at+size], nil
	}, func() { syscall.Munmap(data) }
}
