package registrar

import (
	"fmt"
	"strings"
	"sync"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

// A profile holds the contacts reg_fetch_contacts copied for $ulc. As in
// Kamailio (per process), profiles belong to the worker running the script.
type profile struct {
	set      bool
	aor      string
	domain   string
	contacts []usrloc.Contact
}

var (
	pvOnce     sync.Once
	profMu     sync.Mutex
	profByWork = map[*kemi.WorkerState]map[string]*profile{}
)

func registerPVs() {
	pvOnce.Do(func() {
		pv.Register("ulc", &pv.Class{NeedsInner: true, Get: pvGetULC})
	})
}

// getProfile returns the worker's profile, created when missing.
func getProfile(c *kemi.Ctx, name string) *profile {
	profMu.Lock()
	defer profMu.Unlock()
	ps := profByWork[c.Worker]
	if ps == nil {
		ps = map[string]*profile{}
		profByWork[c.Worker] = ps
	}
	p := ps[name]
	if p == nil {
		p = &profile{}
		ps[name] = p
	}
	return p
}

// FetchContacts is reg_fetch_contacts(table, uri, profile): copies every
// binding (expired ones the timer has not removed included) of the AoR of
// uri into the profile read by $ulc(profile=>attr). 1, or -1 (bad
// parameters, AoR not found).
func (m *Module) FetchContacts(c *kemi.Ctx, table, uri, name string) int {
	if name == "" {
		c.Log.Error().Msg("registrar: invalid profile name")
		return -1
	}
	p := getProfile(c, name)
	profMu.Lock()
	*p = profile{}
	profMu.Unlock()
	aor, _, rc := m.extractAOR(uri)
	if rc != rFine {
		c.Log.Error().Str("uri", uri).Msg("registrar: failed to extract Address Of Record")
		return -1
	}
	cs, found := m.ul.Domain(table).Get(aor)
	profMu.Lock()
	defer profMu.Unlock()
	p.set, p.aor, p.domain = true, aor, table
	if !found {
		return -1
	}
	p.contacts = cs
	return 1
}

// FreeContacts is reg_free_contacts(profile): empties the profile. 1, or
// -1 for an empty name.
func (m *Module) FreeContacts(c *kemi.Ctx, name string) int {
	if name == "" {
		return -1
	}
	p := getProfile(c, name)
	profMu.Lock()
	*p = profile{}
	profMu.Unlock()
	return 1
}

var ulcAttrs = map[string]bool{
	"aor": true, "domain": true, "aorhash": true, "addr": true, "path": true, "received": true,
	"expires": true, "callid": true, "q": true, "cseq": true, "flags": true, "cflags": true,
	"user_agent": true, "socket": true, "modified": true, "methods": true, "count": true,
	"ruid": true, "regid": true, "instance": true, "conid": true, "server_id": true,
}

// pvGetULC is $ulc(profile=>attr), $(ulc(profile=>attr)[i]) for the i-th
// contact (the first by default).
func pvGetULC(c *kemi.Ctx, s *pv.Spec, inner string) (val.Value, error) {
	name, attr, ok := strings.Cut(inner, "=>")
	name, attr = strings.TrimSpace(name), strings.TrimSpace(attr)
	if !ok || name == "" || !ulcAttrs[attr] {
		return val.NullValue, fmt.Errorf("%w: $ulc(%s)", pv.ErrSyntax, inner)
	}
	p := getProfile(c, name)
	profMu.Lock()
	defer profMu.Unlock()
	if !p.set || len(p.contacts) == 0 {
		return val.NullValue, nil
	}
	idx := 0
	if s.HasIdx && !s.IdxAll && s.Idx > 0 {
		idx = s.Idx
	}
	if idx >= len(p.contacts) {
		return val.NullValue, nil
	}
	ct := &p.contacts[idx]
	i := func(n int64) val.Value { return val.OfInt(n) }
	str := val.OfStr
	switch attr {
	case "aor":
		return str(p.aor), nil
	case "domain":
		return str(p.domain), nil
	case "aorhash":
		return i(int64(aorHash(p.aor))), nil
	case "addr":
		return str(ct.URI), nil
	case "path":
		return str(ct.Path), nil
	case "received":
		return str(ct.Received), nil
	case "expires":
		return i(ct.Expires), nil
	case "callid":
		return str(ct.CallID), nil
	case "q":
		return i(int64(ct.Q)), nil
	case "cseq":
		return i(int64(ct.CSeq)), nil
	case "flags":
		return i(int64(ct.Flags)), nil
	case "cflags":
		return i(int64(ct.CFlags)), nil
	case "user_agent":
		return str(ct.UserAgent), nil
	case "socket":
		if ct.Socket == "" {
			return val.NullValue, nil
		}
		return str(ct.Socket), nil
	case "modified":
		return i(ct.LastModified), nil
	case "methods":
		return i(int64(ct.Methods)), nil
	case "count":
		return i(int64(len(p.contacts))), nil
	case "ruid":
		return str(ct.RUID), nil
	case "regid":
		return i(int64(ct.RegID)), nil
	case "instance":
		if ct.Instance == "" {
			return val.NullValue, nil
		}
		return str(ct.Instance), nil
	case "conid":
		if proto, _, _ := strings.Cut(ct.Socket, ":"); isStream(proto) {
			if ct.ConnID == 0 {
				return i(-1), nil
			}
			return i(ct.ConnID), nil
		}
		return val.NullValue, nil
	case "server_id":
		return i(int64(ct.ServerID)), nil
	}
	return val.NullValue, nil
}
