package jsontext

import (
	"bytes"
	"encoding/json"
	"errors"
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

// TestObject: members are separated by commas, the first of an object
// (also in an array, or nested) has none, and the first error sticks.
func TestObject(t *testing.T) {
	var w Object
	w.B = append(w.B, '[')
	w.Open()
	w.Str("a", "x<y")
	w.Uint("b", 18446744073709551615)
	w.Key("c")
	w.Open()
	w.Int("d", -1)
	w.Close()
	w.Close()
	w.B = append(w.B, ',')
	w.Open()
	w.Close()
	w.B = append(w.B, ']')
	want := `[{"a":"x\u003cy","b":18446744073709551615,"c":{"d":-1}},{}]`
	if got := string(w.B); got != want {
		t.Errorf("Object wrote %s, want %s", got, want)
	}
	first, second := errors.New("first"), errors.New("second")
	w.Fail(first)
	w.Fail(second)
	if w.Err != first {
		t.Errorf("Err = %v, want the first error", w.Err)
	}
}
