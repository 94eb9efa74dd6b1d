package rpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/htable"
	"github.com/kemigo/kemigo/core/val"
)

// This file holds ready-made registrations of Kamailio's RPC commands over
// kemigo's Go APIs, so that wiring a module is one call.

// ---------------------------------------------------------------- core.*

// Proc is one core.psx entry (Kamailio: IDX, PID, DSC).
type Proc struct {
	IDX int    `json:"IDX"`
	PID int    `json:"PID"`
	DSC string `json:"DSC"`
}

// RegisterCore registers core.version, core.info, core.uptime, core.psx,
// core.ps and core.echo. version is kemigo's ("0.1.0"); psx lists the
// "processes" (kemigo: the main goroutines and the Python workers), nil
// for a single main entry.
func RegisterCore(s *Server, version string, started time.Time, psx func() []any) {
	full := fmt.Sprintf("kemigo %s (%s %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if psx == nil {
		psx = func() []any { return []any{Proc{IDX: 0, PID: os.Getpid(), DSC: "main process"}} }
	}
	s.Register("core.version", "Returns the version string of the server.",
		func(context.Context, []any) (any, error) { return full, nil })
	s.Register("core.info", "Verbose info, including version number, compile flags, compiler,repository hash etc.",
		func(context.Context, []any) (any, error) {
			return map[string]any{
				"version":  "kemigo " + version,
				"id":       "",
				"compiler": runtime.Version() + " " + runtime.Compiler,
				"compiled": "",
				"flags":    runtime.GOOS + "/" + runtime.GOARCH,
			}, nil
		})
	s.Register("core.uptime", "Returns uptime of SER server.",
		func(context.Context, []any) (any, error) {
			now := time.Now()
			return map[string]any{
				"now":      now.Format(time.ANSIC),
				"up_since": started.Format(time.ANSIC),
				"uptime":   int64(now.Sub(started) / time.Second),
			}, nil
		})
	s.Register("core.psx", "Returns the description of running processes.",
		func(context.Context, []any) (any, error) { return nonNil(psx()), nil })
	s.Register("core.ps", "Returns the description of running processes (pid, description pairs).",
		func(context.Context, []any) (any, error) {
			out := []any{}
			for _, p := range psx() {
				if pr, ok := p.(Proc); ok {
					out = append(out, pr.PID, pr.DSC)
				} else if m, ok := p.(map[string]any); ok {
					out = append(out, m["PID"], m["DSC"])
				}
			}
			return out, nil
		})
	s.Register("core.echo", "Returns back its parameters.",
		func(_ context.Context, p []any) (any, error) { return nonNil(p), nil })
}

func nonNil(p []any) []any {
	if p == nil {
		return []any{}
	}
	return p
}

// ---------------------------------------------------------------- htable.*

// HTableAPI is the part of htable.Module's Go API the htable.* commands use.
type HTableAPI interface {
	Tables() []string
	Get(table, key string) (val.Value, error)
	Set(table, key string, v val.Value) error
	SetEx(table, key string, v val.Value, expire int) error
	SetExpire(table, key string, expire int) error
	Delete(table, key string) (bool, error)
	Reset(table string) error
	Dump(table string) ([]htable.Item, error)
}

// htSpecs is implemented by *htable.Module (htable.listTables).
type htSpecs interface {
	Table(name string) *htable.Table
}

// Kamailio item flags: AVP_VAL_STR.
const avpValStr = 1 << 1

// htKey reads a key parameter. A number is taken as its decimal text, so
// a key of digits works whether the client sent it as a number or (kamcmd
// "s:10", kemigo ctl alike) as a string.
func htKey(p []any, i int) (string, error) { return String(p, i) }

func htTableErr(err error) error {
	if errors.Is(err, htable.ErrNoTable) {
		return Errorf(500, "No such htable")
	}
	return err
}

func htValue(v val.Value) any {
	if v.Kind == val.Str {
		return v.S
	}
	return v.I
}

func htExpire(exp int64) string {
	if exp == 0 {
		return "NEVER"
	}
	return time.Unix(exp, 0).Format("2006-01-02 15:04:05")
}

// RegisterHTable registers htable.get, htable.sets, htable.seti,
// htable.setex, htable.setxs, htable.setxi, htable.delete, htable.dump,
// htable.flush and htable.listTables with Kamailio's parameters, messages
// and reply shapes.
func RegisterHTable(s *Server, ht HTableAPI) {
	s.Register("htable.get", "Get one key from a hash table.",
		func(_ context.Context, p []any) (any, error) {
			name, err1 := String(p, 0)
			key, err2 := htKey(p, 1)
			if err1 != nil || err2 != nil {
				return nil, Errorf(500, "Not enough parameters (htable name and key name)")
			}
			v, err := ht.Get(name, key)
			if err != nil {
				return nil, htTableErr(err)
			}
			if v.IsNull() {
				return nil, Errorf(500, "Key name doesn't exist in htable.")
			}
			flags, exp := 0, "NEVER"
			if v.Kind == val.Str {
				flags = avpValStr
			}
			// The Go API has no per-key expiry getter: find the item in a dump
			// (an admin command; the table is walked once).
			if items, err := ht.Dump(name); err == nil {
				i := sort.Search(len(items), func(i int) bool { return items[i].Key >= key })
				if i < len(items) && items[i].Key == key {
					exp = htExpire(items[i].Expire)
				}
			}
			return map[string]any{"item": map[string]any{
				"name": key, "value": htValue(v), "flags": flags, "expire": exp,
			}}, nil
		})
	s.Register("htable.sets", "Set one key in a hash table to a string value.",
		func(_ context.Context, p []any) (any, error) {
			name, err1 := String(p, 0)
			key, err2 := htKey(p, 1)
			v, err3 := String(p, 2)
			if err1 != nil || err2 != nil || err3 != nil {
				return nil, Errorf(500, "Not enough parameters (htable name, key name and value)")
			}
			if err := ht.Set(name, key, val.OfStr(v)); err != nil {
				return nil, htTableErr(err)
			}
			return "Ok. Key set to new value.", nil
		})
	s.Register("htable.seti", "Set one key in a hash table to an integer value.",
		func(_ context.Context, p []any) (any, error) {
			name, err1 := String(p, 0)
			key, err2 := htKey(p, 1)
			v, err3 := Int(p, 2)
			if err1 != nil || err2 != nil || err3 != nil {
				return nil, Errorf(500, "Not enough parameters (htable name, key name and value)")
			}
			if err := ht.Set(name, key, val.OfInt(v)); err != nil {
				return nil, htTableErr(err)
			}
			return "Ok. Key set to new value.", nil
		})
	s.Register("htable.setex", "Set expire in a hash table for the item referenced by key.",
		func(_ context.Context, p []any) (any, error) {
			name, err1 := String(p, 0)
			key, err2 := htKey(p, 1)
			exp, err3 := Int(p, 2)
			if err1 != nil || err2 != nil || err3 != nil {
				return nil, Errorf(500, "Not enough parameters (htable name, item name and expire)")
			}
			if err := ht.SetExpire(name, key, int(exp)); err != nil {
				return nil, htTableErr(err)
			}
			return "Ok", nil
		})
	setx := func(intval bool) Handler {
		return func(_ context.Context, p []any) (any, error) {
			name, err1 := String(p, 0)
			key, err2 := htKey(p, 1)
			var v val.Value
			var err3 error
			if intval {
				var n int64
				n, err3 = Int(p, 2)
				v = val.OfInt(n)
			} else {
				var sv string
				sv, err3 = String(p, 2)
				v = val.OfStr(sv)
			}
			exp, err4 := Int(p, 3)
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
				return nil, Errorf(500, "Not enough parameters (htable name, key name, value and expire)")
			}
			if err := ht.SetEx(name, key, v, int(exp)); err != nil {
				if errors.Is(err, htable.ErrNoTable) {
					return nil, Errorf(500, "Failed to set the item")
				}
				return nil, err
			}
			return "Ok. Key set to new value.", nil
		}
	}
	s.Register("htable.setxs", "Set one key in a hash table to a string value and its expire value.", setx(false))
	s.Register("htable.setxi", "Set one key in a hash table to an integer value and its expire value.", setx(true))
	s.Register("htable.delete", "Delete one key from a hash table.",
		func(_ context.Context, p []any) (any, error) {
			name, err1 := String(p, 0)
			key, err2 := htKey(p, 1)
			if err1 != nil || err2 != nil {
				return nil, Errorf(500, "Not enough parameters (htable name & key name)")
			}
			ok, err := ht.Delete(name, key)
			if err != nil {
				return nil, htTableErr(err)
			}
			if !ok {
				return nil, Errorf(404, "Key not found in htable.")
			}
			return "Ok. Key deleted.", nil
		})
	s.Register("htable.dump", "Dump the contents of hash table.",
		func(_ context.Context, p []any) (any, error) {
			name, err := String(p, 0)
			if err != nil {
				return nil, Errorf(500, "No htable name given")
			}
			items, err := ht.Dump(name)
			if err != nil {
				return nil, htTableErr(err)
			}
			// Kamailio lists the non-empty slots, each with its items; the Go
			// API has no slots, so every item is in one entry, sorted by key.
			out := []any{}
			if len(items) == 0 {
				return out, nil
			}
			slot := make([]any, len(items))
			for i, it := range items {
				typ := "int"
				if it.Value.Kind == val.Str {
					typ = "str"
				}
				slot[i] = map[string]any{"name": it.Key, "value": htValue(it.Value), "type": typ}
			}
			return append(out, map[string]any{"entry": 0, "size": len(items), "slot": slot}), nil
		})
	s.Register("htable.flush", "Empty the hash table.",
		func(_ context.Context, p []any) (any, error) {
			name, err := String(p, 0)
			if err != nil {
				return nil, Errorf(500, "No htable name given")
			}
			if err := ht.Reset(name); err != nil {
				return nil, htTableErr(err)
			}
			return "Ok. Htable flushed.", nil
		})
	s.Register("htable.listTables", "List all htables.",
		func(context.Context, []any) (any, error) {
			names := ht.Tables()
			if len(names) == 0 {
				return nil, Errorf(500, "No htables")
			}
			out := make([]any, 0, len(names))
			specs, _ := ht.(htSpecs)
			for _, n := range names {
				e := map[string]any{"name": n, "dbtable": "", "dbmode": 0}
				if specs != nil {
					if t := specs.Table(n); t != nil {
						sp := t.Spec()
						upd := 0
						if sp.UpdateExpire {
							upd = 1
						}
						e["expire"] = sp.AutoExpire
						e["updateexpire"] = upd
						e["size"] = htSize(sp.Size)
						e["dmqreplicate"] = sp.DMQReplicate
					}
				}
				out = append(out, e)
			}
			return out, nil
		})
}

// htSize is Kamailio's slot count for the size attribute (ht_add_table).
func htSize(size int) int {
	switch {
	case size <= 1:
		return 8
	case size > 31:
		return 1 << 14
	}
	return 1 << uint(size)
}

// ---------------------------------------------------------------- app_python.*

// AppPython is the app_python.reload state: the reload version counter.
type AppPython struct {
	mu      sync.Mutex
	reload  func() error
	version int
}

// Reload runs the reload function; on success the version goes from old
// to new = old+1. Use it for SIGHUP too so both paths count alike.
func (a *AppPython) Reload() (old, new int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reload(); err != nil {
		return a.version, a.version, err
	}
	a.version++
	return a.version - 1, a.version, nil
}

// Version returns the number of successful reloads.
func (a *AppPython) Version() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

// RegisterAppPython registers app_python.reload (and app_python3.reload,
// app_python3s.reload, the same) and app_python.api_list. reload re-imports
// the script in every worker and returns only when they all did (kemigo
// does not reload lazily as Kamailio does); it answers {"old": v, "new":
// v+1}. On failure the script error is in the message (with its file and
// line for a *pybridge.ScriptError) and its traceback in data. apiList
// (nil: not registered) gives the exports, see KEMIAPIList.
func RegisterAppPython(s *Server, reload func() error, apiList func() any) *AppPython {
	a := &AppPython{reload: reload}
	h := func(context.Context, []any) (any, error) {
		old, nv, err := a.Reload()
		if err != nil {
			e := &Error{Code: 500, Message: "Reload failed: " + err.Error()}
			if d := scriptErrorData(err); d != nil {
				e.Data = d
			}
			return nil, e
		}
		return map[string]any{"old": old, "new": nv}, nil
	}
	s.Register("app_python.reload", "Reload python file", h)
	s.Register("app_python3.reload", "Reload python file (alias of app_python.reload)", h)
	s.Register("app_python3s.reload", "Reload python file (alias of app_python.reload)", h)
	if apiList != nil {
		l := func(context.Context, []any) (any, error) { return apiList(), nil }
		s.Register("app_python.api_list", "List kemi exports to python", l)
		s.Register("app_python3.api_list", "List kemi exports to python (alias of app_python.api_list)", l)
		s.Register("app_python3s.api_list", "List kemi exports to python (alias of app_python.api_list)", l)
	}
	return a
}

// scriptErrorData finds, in err's chain, a struct with the fields of
// pybridge.ScriptError (File string, Line int, Text string) without
// importing the cgo package.
func scriptErrorData(err error) map[string]any {
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				break
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			continue
		}
		f, l, t := v.FieldByName("File"), v.FieldByName("Line"), v.FieldByName("Text")
		if f.IsValid() && f.Kind() == reflect.String && l.IsValid() && l.CanInt() && t.IsValid() && t.Kind() == reflect.String {
			return map[string]any{"file": f.String(), "line": l.Int(), "traceback": t.String()}
		}
	}
	return nil
}

// KEMIAPIList renders an export table as Kamailio's app_python.api_list:
// {"msize": n, "methods": [{"func": {"ret", "module", "name", "params"}}]}.
func KEMIAPIList(t *kemi.Table) map[string]any {
	all := t.All()
	methods := make([]any, 0, len(all))
	for _, e := range all {
		ps := make([]string, len(e.Params))
		for i, p := range e.Params {
			ps[i] = p.String()
		}
		params := strings.Join(ps, ", ")
		if params == "" {
			params = "none"
		}
		methods = append(methods, map[string]any{"func": map[string]any{
			"ret": e.Ret.String(), "module": e.Module, "name": e.Name, "params": params,
		}})
	}
	return map[string]any{"msize": len(all), "methods": methods}
}

// ---------------------------------------------------------------- stats.*

// RegisterStats registers stats.get_statistics, stats.fetch and
// stats.fetchn over stats, which returns every statistic keyed
// "group:name" (e.g. "core:rcv_requests", "sl:200_replies") with an
// integer value. Parameters select "all", a group "sl:", or one statistic
// "sl:200_replies" (or just "200_replies"); several may be given.
func RegisterStats(s *Server, stats func() map[string]any) {
	sel := func(p []any) ([]string, map[string]any, error) {
		if len(p) == 0 {
			return nil, nil, Errorf(400, "Please provide which stats to retrieve")
		}
		all := stats()
		keys := make([]string, 0, len(all))
		for k := range all {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []string
		seen := map[string]bool{}
		for i := range p {
			want, err := String(p, i)
			if err != nil {
				return nil, nil, Errorf(400, "Please provide which stats to retrieve")
			}
			for _, k := range keys {
				if !seen[k] && statMatch(k, want) {
					seen[k] = true
					out = append(out, k)
				}
			}
		}
		return out, all, nil
	}
	s.Register("stats.get_statistics", "Print the value of one or more statistics.",
		func(_ context.Context, p []any) (any, error) {
			keys, all, err := sel(p)
			if err != nil {
				return nil, err
			}
			out := make([]any, 0, len(keys))
			for _, k := range keys {
				out = append(out, fmt.Sprintf("%s = %v", k, all[k]))
			}
			return out, nil
		})
	fetch := func(numeric bool) Handler {
		return func(_ context.Context, p []any) (any, error) {
			keys, all, err := sel(p)
			if err != nil {
				return nil, err
			}
			out := make(map[string]any, len(keys))
			for _, k := range keys {
				name := strings.Replace(k, ":", ".", 1)
				if numeric {
					out[name] = all[k]
				} else {
					out[name] = fmt.Sprint(all[k])
				}
			}
			return out, nil
		}
	}
	s.Register("stats.fetch", "Print the value of one or more statistics (values as strings).", fetch(false))
	s.Register("stats.fetchn", "Print the value of one or more statistics (values as numbers).", fetch(true))
}

func statMatch(key, want string) bool {
	if want == "all" {
		return true
	}
	group, name, _ := strings.Cut(key, ":")
	if strings.HasSuffix(want, ":") {
		return group == want[:len(want)-1]
	}
	if w := strings.Replace(want, ".", ":", 1); w == key {
		return true
	}
	return want == name
}

// AddStats copies a module's statistics into dst under "group:name".
func AddStats[V any](dst map[string]any, group string, src map[string]V) {
	for k, v := range src {
		dst[group+":"+k] = v
	}
}

// ---------------------------------------------------------------- tm.stats

// TMStats is the reply of tm.stats.
type TMStats struct {
	Current      uint64 `json:"current"`
	Waiting      uint64 `json:"waiting"`
	Total        uint64 `json:"total"`
	TotalLocal   uint64 `json:"total_local"`
	RplReceived  uint64 `json:"rpl_received"`
	RplGenerated uint64 `json:"rpl_generated"`
	RplSent      uint64 `json:"rpl_sent"`
	C6xx         uint64 `json:"6xx"`
	C5xx         uint64 `json:"5xx"`
	C4xx         uint64 `json:"4xx"`
	C3xx         uint64 `json:"3xx"`
	C2xx         uint64 `json:"2xx"`
	Created      uint64 `json:"created"`
	Freed        uint64 `json:"freed"`
	DelayedFree  uint64 `json:"delayed_free"`
}

// RegisterTM registers tm.stats.
func RegisterTM(s *Server, stats func() TMStats) {
	s.Register("tm.stats", "Print transaction statistics.",
		func(context.Context, []any) (any, error) { return stats(), nil })
}

// ---------------------------------------------------------------- permissions.*

// RegisterPermissions registers permissions.addressReload ("Reload OK", or
// 500 "Reload failed." with the cause) and, when addressDump is not nil,
// permissions.addressDump.
func RegisterPermissions(s *Server, addressReload func() error, addressDump func() any) {
	s.Register("permissions.addressReload", "Reload address table from database",
		func(context.Context, []any) (any, error) {
			if err := addressReload(); err != nil {
				return nil, &Error{Code: 500, Message: "Reload failed.", Data: err.Error()}
			}
			return "Reload OK", nil
		})
	if addressDump != nil {
		s.Register("permissions.addressDump", "Returns the contents of address table",
			func(context.Context, []any) (any, error) { return addressDump(), nil })
	}
}

// ---------------------------------------------------------------- ul.*

// ULContact is one registered contact as ul.dump shows it.
type ULContact struct {
	Address      string
	Expires      int64 // Unix seconds; 0: permanent
	Q            float64
	CallID       string
	CSeq         int
	UserAgent    string
	Received     string
	Path         string
	Socket       string
	Flags        uint32
	CFlags       uint32
	Methods      uint32
	Ruid         string
	Instance     string
	RegID        uint32
	LastModified int64 // Unix seconds
}

// ULRecord is one AoR with its contacts.
type ULRecord struct {
	AoR      string
	HashID   uint32
	Contacts []ULContact
}

// ULDomain is one location table ("location").
type ULDomain struct {
	Name    string
	Size    int
	Records []ULRecord
}

func notSet(s string) string {
	if s == "" {
		return "[not set]"
	}
	return s
}

func ulContact(c ULContact, now int64) map[string]any {
	var exp any
	switch {
	case c.Expires == 0:
		exp = "permanent"
	case now > c.Expires:
		exp = "expired"
	default:
		exp = c.Expires - now
	}
	return map[string]any{"Contact": map[string]any{
		"Address": c.Address, "Expires": exp, "Q": c.Q, "Call-ID": c.CallID, "CSeq": c.CSeq,
		"User-Agent": notSet(c.UserAgent), "Received": notSet(c.Received), "Path": notSet(c.Path),
		"State": "CS_NEW", "Flags": c.Flags, "CFlags": c.CFlags, "Socket": notSet(c.Socket),
		"Methods": c.Methods, "Ruid": notSet(c.Ruid), "Instance": notSet(c.Instance),
		"Reg-Id": c.RegID, "Server-Id": 0, "Tcpconn-Id": -1, "Keepalive": 0,
		"Last-Keepalive": 0, "KA-Roundtrip": 0, "Last-Modified": c.LastModified,
	}}
}

func ulContacts(r ULRecord, now int64) []any {
	out := make([]any, len(r.Contacts))
	for i, c := range r.Contacts {
		out[i] = ulContact(c, now)
	}
	return out
}

// RegisterUL registers ul.dump ([brief]) and, when lookup is not nil,
// ul.lookup TABLE AOR, with Kamailio's reply shapes.
func RegisterUL(s *Server, dump func() []ULDomain, lookup func(table, aor string) (ULRecord, bool, error)) {
	s.Register("ul.dump", "Dump user location tables",
		func(_ context.Context, p []any) (any, error) {
			brief := false
			if b, _ := OptString(p, 0, ""); b == "brief" {
				brief = true
			}
			now := time.Now().Unix()
			doms := []any{}
			for _, d := range dump() {
				aors := []any{}
				for _, r := range d.Records {
					if brief {
						aors = append(aors, map[string]any{"AoR": r.AoR})
						continue
					}
					aors = append(aors, map[string]any{"Info": map[string]any{
						"AoR": r.AoR, "HashID": r.HashID, "Contacts": ulContacts(r, now),
					}})
				}
				doms = append(doms, map[string]any{"Domain": map[string]any{
					"Domain": d.Name, "Size": d.Size, "AoRs": aors,
					"Stats": map[string]any{"Records": len(d.Records), "Max-Slots": 0},
				}})
			}
			return map[string]any{"Domains": doms}, nil
		})
	if lookup == nil {
		return
	}
	s.Register("ul.lookup", "Lookup one AOR in the usrloc location table",
		func(_ context.Context, p []any) (any, error) {
			table, err1 := String(p, 0)
			aor, err2 := String(p, 1)
			if err1 != nil || err2 != nil {
				return nil, Errorf(500, "Not enough parameters (table and AOR to lookup)")
			}
			r, ok, err := lookup(table, aor)
			if err != nil {
				return nil, Errorf(500, "Domain table not found")
			}
			if !ok {
				return nil, Errorf(500, "AOR not found in location table")
			}
			if len(r.Contacts) == 0 {
				return nil, Errorf(500, "AOR has no contacts")
			}
			return map[string]any{"AoR": aor, "Contacts": ulContacts(r, time.Now().Unix())}, nil
		})
}
