package jsontext

import "strconv"

// Object appends JSON objects to B member by member, for the hand-written
// encoders: Open and Close an object; Key writes a member's key (k needs
// no escaping), with the comma before it unless it is its object's first
// member; Str, Uint and Int write a whole member. The encoders write other
// values after Key themselves. The first error given to Fail stays in Err.
type Object struct {
	B   []byte
	Err error
}

// Open starts an object.
func (w *Object) Open() { w.B = append(w.B, '{') }

// Close ends an object.
func (w *Object) Close() { w.B = append(w.B, '}') }

// Key writes a member's key and its colon. A member is its object's first
// when it follows '{' (or, in an array of values, '['): no value this
// type writes ends with either.
func (w *Object) Key(k string) {
	if n := len(w.B); n > 0 && w.B[n-1] != '{' && w.B[n-1] != '[' {
		w.B = append(w.B, ',')
	}
	w.B = append(w.B, '"')
	w.B = append(w.B, k...)
	w.B = append(w.B, '"', ':')
}

// Str writes a string member, as encoding/json writes the string.
func (w *Object) Str(k, s string) {
	w.Key(k)
	w.B = AppendString(w.B, s)
}

// Uint writes an unsigned integer member.
func (w *Object) Uint(k string, v uint64) {
	w.Key(k)
	w.B = strconv.AppendUint(w.B, v, 10)
}

// Int writes an integer member.
func (w *Object) Int(k string, v int64) {
	w.Key(k)
	w.B = strconv.AppendInt(w.B, v, 10)
}

// Fail records err, unless an error is recorded already.
func (w *Object) Fail(err error) {
	if w.Err == nil {
		w.Err = err
	}
}
