// Package kemi is kemigo's KEMI export table: every function reachable from a
// route script as KSR.<module>.<name> is declared once here, with its
// parameter and return types, and the Python binding, the type stubs and the
// reference docs are all generated from that one table.
package kemi

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kemigo/kemigo/core/val"
)

// ParamType is the type of one KEMI parameter.
type ParamType uint8

const (
	PStr ParamType = iota
	PInt
)

// RetType is the declared return type of a KEMI function (SPEC §6.3).
type RetType uint8

const (
	RInt  RetType = iota // Python int
	RBool                // True / False
	RXval                // None, int or str
	RNone                // int 0
	RStr                 // str
)

func (p ParamType) String() string {
	if p == PInt {
		return "int"
	}
	return "str"
}

func (r RetType) String() string {
	return [...]string{"int", "bool", "xval", "none", "str"}[r]
}

// Func implements a KEMI function. args has exactly len(Export.Params)
// values, each already of the declared type (val.Int or val.Str).
type Func func(c *Ctx, args []val.Value) val.Value

// Export declares one KEMI function.
type Export struct {
	Module string // "" for KSR.<name>; "pv", "hdr", "sl", ...
	Name   string
	Params []ParamType
	Ret    RetType
	Doc    string // one line, for stubs and docs
	Fn     Func
	ID     int // index in the table, set by Register
}

// FullName is the Python spelling, e.g. "KSR.sl.sl_send_reply".
func (e *Export) FullName() string {
	if e.Module == "" {
		return "KSR." + e.Name
	}
	return "KSR." + e.Module + "." + e.Name
}

// Table holds every export. It is filled at start-up, before any
// interpreter exists, and read-only afterwards.
type Table struct {
	list   []*Export
	byName map[string]*Export
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{byName: map[string]*Export{}} }

// Register adds exports; a duplicate name is a programming error.
func (t *Table) Register(exps ...Export) {
	for i := range exps {
		e := exps[i]
		key := e.Module + "." + e.Name
		if _, dup := t.byName[key]; dup {
			panic(fmt.Sprintf("kemi: %s registered twice", e.FullName()))
		}
		e.ID = len(t.list)
		t.list = append(t.list, &e)
		t.byName[key] = &e
	}
}

// All returns the exports in registration order (ID order).
func (t *Table) All() []*Export { return t.list }

// ByID returns the export with that id, or nil.
func (t *Table) ByID(id int) *Export {
	if id < 0 || id >= len(t.list) {
		return nil
	}
	return t.list[id]
}

// Lookup finds module.name ("" module for core).
func (t *Table) Lookup(module, name string) *Export { return t.byName[module+"."+name] }

// Modules returns the sorted module names ("" excluded).
func (t *Table) Modules() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range t.list {
		if e.Module != "" && !seen[e.Module] {
			seen[e.Module] = true
			out = append(out, e.Module)
		}
	}
	sort.Strings(out)
	return out
}

// Sig renders a Python-ish signature, e.g. "sl_send_reply(code: int, reason: str) -> int".
func (e *Export) Sig(paramNames []string) string {
	var b strings.Builder
	b.WriteString(e.Name)
	b.WriteByte('(')
	for i, p := range e.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		n := fmt.Sprintf("p%d", i+1)
		if i < len(paramNames) {
			n = paramNames[i]
		}
		b.WriteString(n + ": " + p.String())
	}
	b.WriteString(")")
	return b.String()
}

// Helpers to declare exports tersely.

// S and I are parameter lists.
func S(n int) []ParamType { return repeat(PStr, n) }
func I(n int) []ParamType { return repeat(PInt, n) }

// P builds a parameter list from a spec such as "sis" (str, int, str).
func P(spec string) []ParamType {
	out := make([]ParamType, 0, len(spec))
	for _, c := range spec {
		if c == 'i' {
			out = append(out, PInt)
		} else {
			out = append(out, PStr)
		}
	}
	return out
}

func repeat(p ParamType, n int) []ParamType {
	out := make([]ParamType, n)
	for i := range out {
		out[i] = p
	}
	return out
}

// Return helpers.
func RetInt(i int) val.Value { return val.OfInt(int64(i)) }
func RetBool(b bool) val.Value {
	return val.OfBool(b)
}
