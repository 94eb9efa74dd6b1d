// Package val holds the value type that crosses between routes, pseudo-variables
// and KEMI functions: null, integer or string, as in Kamailio's sr_kemi_xval_t.
package val

import "strconv"

// Kind tells which field of a Value is meaningful.
type Kind uint8

const (
	Null Kind = iota
	Int
	Str
	Bool
)

// Value is a KEMI value. The zero Value is null.
type Value struct {
	Kind Kind
	I    int64
	S    string
}

// OfInt, OfStr, OfBool and NullValue build values.
func OfInt(i int64) Value  { return Value{Kind: Int, I: i} }
func OfStr(s string) Value { return Value{Kind: Str, S: s} }
func OfBool(b bool) Value {
	if b {
		return Value{Kind: Bool, I: 1}
	}
	return Value{Kind: Bool}
}

// NullValue is the null value.
var NullValue = Value{}

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.Kind == Null }

// String renders v as Kamailio prints it: "<null>" for null.
func (v Value) String() string {
	switch v.Kind {
	case Int:
		return strconv.FormatInt(v.I, 10)
	case Str:
		return v.S
	case Bool:
		if v.I != 0 {
			return "1"
		}
		return "0"
	}
	return "<null>"
}

// AsInt converts v to an integer the way pv.geti does: null, error or
// non-numeric strings give 0.
func (v Value) AsInt() int64 {
	switch v.Kind {
	case Int, Bool:
		return v.I
	case Str:
		n, err := strconv.ParseInt(v.S, 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
	return 0
}
