package rtpengine

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// Bencode (the encoding of rtpengine's NG protocol): strings "4:spam",
// integers "i42e", lists "l...e" and dictionaries "d...e". Values are Go
// string (byte strings, possibly binary), int64, []any and *Dict.

// Dict is a bencode dictionary that keeps its keys in insertion order
// (Kamailio sends them in the order it adds them; rtpengine does not
// require sorted keys).
type Dict struct {
	keys []string
	vals map[string]any
}

// NewDict returns an empty dictionary.
func NewDict() *Dict { return &Dict{vals: map[string]any{}} }

// Set adds or replaces a value; a replaced key keeps its place.
func (d *Dict) Set(k string, v any) {
	if _, ok := d.vals[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.vals[k] = v
}

// Get returns the value of k.
func (d *Dict) Get(k string) (any, bool) {
	v, ok := d.vals[k]
	return v, ok
}

// Keys returns the keys in order.
func (d *Dict) Keys() []string { return append([]string(nil), d.keys...) }

// Len is the number of entries.
func (d *Dict) Len() int { return len(d.keys) }

// Str returns the string value of k.
func (d *Dict) Str(k string) (string, bool) {
	s, ok := d.vals[k].(string)
	return s, ok
}

// Int returns the integer value of k.
func (d *Dict) Int(k string) (int64, bool) {
	i, ok := d.vals[k].(int64)
	return i, ok
}

// Dict returns the dictionary value of k.
func (d *Dict) Dict(k string) (*Dict, bool) {
	x, ok := d.vals[k].(*Dict)
	return x, ok
}

// List returns the list value of k.
func (d *Dict) List(k string) ([]any, bool) {
	l, ok := d.vals[k].([]any)
	return l, ok
}

// Encode renders v. It accepts string, []byte, int, int64, []string,
// []any, *Dict and map[string]any (written with sorted keys).
func Encode(v any) ([]byte, error) {
	return appendValue(nil, v)
}

func appendString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendValue(b []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case string:
		return appendString(b, x), nil
	case []byte:
		return appendString(b, string(x)), nil
	case int:
		return append(strconv.AppendInt(append(b, 'i'), int64(x), 10), 'e'), nil
	case int64:
		return append(strconv.AppendInt(append(b, 'i'), x, 10), 'e'), nil
	case []string:
		b = append(b, 'l')
		for _, s := range x {
			b = appendString(b, s)
		}
		return append(b, 'e'), nil
	case []any:
		b = append(b, 'l')
		for _, e := range x {
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, 'e'), nil
	case *Dict:
		b = append(b, 'd')
		for _, k := range x.keys {
			b = appendString(b, k)
			if b, err = appendValue(b, x.vals[k]); err != nil {
				return nil, err
			}
		}
		return append(b, 'e'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, 'd')
		for _, k := range keys {
			b = appendString(b, k)
			if b, err = appendValue(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, 'e'), nil
	}
	return nil, fmt.Errorf("bencode: cannot encode %T", v)
}

// ErrBencode is wrapped by every decoding error.
var ErrBencode = errors.New("bencode: invalid data")

const maxDepth = 64

// Decode parses one value that must fill all of data.
func Decode(data []byte) (any, error) {
	d := decoder{data: data}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(data) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBencode, len(data)-d.pos)
	}
	return v, nil
}

// DecodeDict parses data that must be a dictionary.
func DecodeDict(data []byte) (*Dict, error) {
	v, err := Decode(data)
	if err != nil {
		return nil, err
	}
	d, ok := v.(*Dict)
	if !ok {
		return nil, fmt.Errorf("%w: not a dictionary", ErrBencode)
	}
	return d, nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrBencode, what, d.pos)
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, d.fail("nested too deep")
	}
	if d.pos >= len(d.data) {
		return nil, d.fail("unexpected end")
	}
	switch c := d.data[d.pos]; {
	case c == 'i':
		d.pos++
		end := d.pos
		for end < len(d.data) && d.data[end] != 'e' {
			end++
		}
		if end >= len(d.data) {
			return nil, d.fail("unterminated integer")
		}
		s := string(d.data[d.pos:end])
		if s == "" || s == "-" || s == "-0" || (len(s) > 1 && s[0] == '0') || (len(s) > 2 && s[0] == '-' && s[1] == '0') {
			return nil, d.fail("bad integer " + strconv.Quote(s))
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, d.fail("bad integer " + strconv.Quote(s))
		}
		d.pos = end + 1
		return n, nil
	case c >= '0' && c <= '9':
		return d.str()
	case c == 'l':
		d.pos++
		list := []any{}
		for {
			if d.pos >= len(d.data) {
				return nil, d.fail("unterminated list")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return list, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == 'd':
		d.pos++
		dict := NewDict()
		for {
			if d.pos >= len(d.data) {
				return nil, d.fail("unterminated dictionary")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return dict, nil
			}
			if c := d.data[d.pos]; c < '0' || c > '9' {
				return nil, d.fail("dictionary key is not a string")
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			dict.Set(k, v)
		}
	}
	return nil, d.fail(fmt.Sprintf("unexpected %q", d.data[d.pos]))
}

func (d *decoder) str() (string, error) {
	colon := d.pos
	for colon < len(d.data) && d.data[colon] >= '0' && d.data[colon] <= '9' {
		colon++
	}
	if colon >= len(d.data) || d.data[colon] != ':' || colon-d.pos > 10 {
		return "", d.fail("bad string length")
	}
	n, err := strconv.Atoi(string(d.data[d.pos:colon]))
	if err != nil || n > len(d.data)-colon-1 {
		return "", d.fail("string longer than the data")
	}
	d.pos = colon + 1 + n
	return string(d.data[colon+1 : d.pos]), nil
}
