// Package pv implements Kamailio pseudo-variables ($ru, $si, $var(x),
// $sht(t=>k), ...): parsing of PV names (with nested PVs evaluated at call
// time), a registry of PV classes that modules extend, and get/set.
package pv

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Errors returned by Get and Set.
var (
	ErrUnknown  = errors.New("unknown pseudo-variable")
	ErrSyntax   = errors.New("bad pseudo-variable name")
	ErrReadOnly = errors.New("read-only pseudo-variable")
	ErrType     = errors.New("value type not accepted")
)

// Spec is a parsed PV name such as "$(hdr(Via)[1])".
type Spec struct {
	Raw    string
	Class  string // "ru", "hdr", "sht", ...
	Inner  string // text between the class's parentheses, unexpanded
	HasIdx bool
	Idx    int  // index when HasIdx
	IdxAll bool // [*]
	Dyn    bool // Inner contains PVs to evaluate at call time
	cls    *Class
}

// Class is one PV family.
type Class struct {
	// Get returns the value; inner is Spec.Inner with nested PVs expanded.
	Get func(c *kemi.Ctx, s *Spec, inner string) (val.Value, error)
	// Set assigns (a null v means unset). Nil for read-only classes.
	Set func(c *kemi.Ctx, s *Spec, inner string, v val.Value) error
	// NeedsInner is true for classes written $name(inner).
	NeedsInner bool
}

var (
	regMu   sync.RWMutex
	classes = map[string]*Class{}
	cache   sync.Map // raw name -> *Spec
	cacheN  atomic.Int64
)

// CacheLimit bounds the cache of parsed names: past it, the cache is
// emptied and fills again (Kamailio's pv_cache_limit, 2048, with
// pv_cache_action 1). Scripts that build names from message data
// ("$hdr(" + name + ")") would otherwise grow it without end.
var CacheLimit int64 = 4096

// Register adds a PV class. Modules call it from their init or setup.
func Register(name string, c *Class) {
	regMu.Lock()
	defer regMu.Unlock()
	classes[name] = c
}

func lookupClass(name string) *Class {
	regMu.RLock()
	defer regMu.RUnlock()
	return classes[name]
}

// Parse parses a PV name. Results are cached by exact string, as Kamailio's
// pv_cache_get does.
func Parse(name string) (*Spec, error) {
	if s, ok := cache.Load(name); ok {
		return s.(*Spec), nil
	}
	s, err := parse(name)
	if err != nil {
		return nil, err
	}
	if _, loaded := cache.LoadOrStore(name, s); !loaded && cacheN.Add(1) > CacheLimit {
		cache.Clear()
		cacheN.Store(0)
	}
	return s, nil
}

func parse(name string) (*Spec, error) {
	s := &Spec{Raw: name}
	t := strings.TrimSpace(name)
	if !strings.HasPrefix(t, "$") || len(t) < 2 {
		return nil, fmt.Errorf("%w: %q", ErrSyntax, name)
	}
	t = t[1:]
	// $(class(inner)[idx]) form
	if t[0] == '(' {
		if !strings.HasSuffix(t, ")") {
			return nil, fmt.Errorf("%w: %q", ErrSyntax, name)
		}
		t = t[1 : len(t)-1]
		if i := strings.LastIndexByte(t, '['); i > 0 && strings.HasSuffix(t, "]") && strings.HasSuffix(t[:i], ")") {
			idx := t[i+1 : len(t)-1]
			t = t[:i]
			s.HasIdx = true
			if idx == "*" {
				s.IdxAll = true
			} else {
				n, err := strconv.Atoi(idx)
				if err != nil {
					return nil, fmt.Errorf("%w: index in %q", ErrSyntax, name)
				}
				s.Idx = n
			}
		}
	}
	if i := strings.IndexByte(t, '('); i >= 0 {
		if !strings.HasSuffix(t, ")") {
			return nil, fmt.Errorf("%w: %q", ErrSyntax, name)
		}
		s.Class = t[:i]
		s.Inner = t[i+1 : len(t)-1]
		s.Dyn = strings.IndexByte(s.Inner, '$') >= 0
	} else {
		s.Class = t
	}
	if s.Class == "" {
		return nil, fmt.Errorf("%w: %q", ErrSyntax, name)
	}
	for _, r := range s.Class {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return nil, fmt.Errorf("%w: %q", ErrSyntax, name)
		}
	}
	s.cls = lookupClass(s.Class)
	if s.cls == nil {
		return nil, fmt.Errorf("%w: $%s", ErrUnknown, s.Class)
	}
	if s.cls.NeedsInner && s.Inner == "" && !strings.Contains(t, "(") {
		return nil, fmt.Errorf("%w: $%s needs a name", ErrSyntax, s.Class)
	}
	return s, nil
}

func (s *Spec) inner(c *kemi.Ctx) string {
	if !s.Dyn {
		return s.Inner
	}
	return Expand(c, s.Inner)
}

// Get evaluates a PV name against the context's current message.
func Get(c *kemi.Ctx, name string) (val.Value, error) {
	s, err := Parse(name)
	if err != nil {
		return val.NullValue, err
	}
	return s.cls.Get(c, s, s.inner(c))
}

// Set assigns v to a PV; a null v unsets it.
func Set(c *kemi.Ctx, name string, v val.Value) error {
	s, err := Parse(name)
	if err != nil {
		return err
	}
	if s.cls.Set == nil {
		return fmt.Errorf("%w: %s", ErrReadOnly, name)
	}
	return s.cls.Set(c, s, s.inner(c), v)
}

// Expand replaces every PV in text with its value (null as "<null>"), as
// Kamailio's pv_printf does for PV names with nested PVs and for xlog.
// Text that does not parse as a PV is kept as is.
func Expand(c *kemi.Ctx, text string) string {
	if strings.IndexByte(text, '$') < 0 {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		if text[i] != '$' {
			b.WriteByte(text[i])
			i++
			continue
		}
		n := pvLen(text[i:])
		if n <= 1 {
			b.WriteByte('$')
			i++
			continue
		}
		v, err := Get(c, text[i:i+n])
		if err != nil {
			b.WriteString(text[i : i+n])
		} else {
			b.WriteString(v.String())
		}
		i += n
	}
	return b.String()
}

// pvLen returns the length of the PV name at the start of s ("$..."), or 0.
func pvLen(s string) int {
	if len(s) < 2 {
		return 0
	}
	i := 1
	if s[1] == '(' {
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return 0
	}
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i < len(s) && s[i] == '(' {
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return 0
	}
	return i
}
