package rpc

import (
	"math"
	"strconv"
	"strings"
)

// String returns parameter i as a string. Numbers are formatted (as
// Kamailio's "S." auto-conversion does); a missing parameter or another
// type is a 400 error.
func String(p []any, i int) (string, error) {
	if i >= len(p) {
		return "", Errorf(400, "missing parameter %d", i+1)
	}
	switch v := p[i].(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	}
	return "", Errorf(400, "parameter %d: not a string", i+1)
}

// Int returns parameter i as an integer; integral floats and numeric
// strings are accepted. A missing parameter or another value is a 400 error.
func Int(p []any, i int) (int64, error) {
	if i >= len(p) {
		return 0, Errorf(400, "missing parameter %d", i+1)
	}
	switch v := p[i].(type) {
	case int64:
		return v, nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return int64(v), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, Errorf(400, "parameter %d: not an integer", i+1)
}

// OptString returns parameter i as a string, or def when it is absent.
func OptString(p []any, i int, def string) (string, error) {
	if i >= len(p) || p[i] == nil {
		return def, nil
	}
	return String(p, i)
}
