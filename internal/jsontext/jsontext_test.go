package jsontext

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendString: AppendString writes what json.Marshal writes for any
// string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "acme", "q\"b\\s/\n\t\r\b\f\x00\x1f\x7f", "<>&", "\u2028\u2029", "a\xffb\xc0\xaf", "é漢🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Errorf("AppendString(%q) = %s, want x%s", s, got, want)
		}
	})
}
