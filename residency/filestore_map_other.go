//go:build !unix

package residency

import "os"

// mapPages returns a page reader for checkTrees that reads the file f page
// by page (readPage), and a release function that does nothing.
func mapPages(f *os.File, pageSize, n uint64) (page func(id uint64, whole bool) ([]byte, error), release func()) {
	return readPage(f, pageSize, n), func() {}
}
