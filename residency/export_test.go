package residency

// StoredEntry stores the change c, whose JSON entry is js, as the file
// store's log does (codec_entry.go), and reads it back: whether it was
// stored in binary, and the JSON entry read back.
func StoredEntry(c *Change, js []byte) (inBinary bool, back []byte, err error) {
	v := appendStoredEntry(nil, c, js)
	back, err = jsonOfStored(nil, v, nil)
	return len(v) > 0 && v[0] == binaryEntry, back, err
}
