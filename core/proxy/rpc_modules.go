package proxy

import (
	"context"

	"github.com/kemigo/kemigo/core/metrics"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/rpc"
)

// registerModuleRPC registers the RPC methods of modules that have them.
func (p *Proxy) registerModuleRPC(srv *rpc.Server) {
	rpc.RegisterPermissions(srv, p.Mods.Perms.Reload, func() any { return p.Mods.Perms.Addresses() })
	rpc.RegisterUL(srv, p.ulDump, func(table, aor string) (rpc.ULRecord, bool, error) {
		cs := p.Mods.Usrloc.Lookup(aor)
		if len(cs) == 0 {
			return rpc.ULRecord{}, false, nil
		}
		return ulRecord(aor, cs), true, nil
	})
	srv.Register("ul.rm", "Delete an AoR from a location table: ul.rm TABLE AOR.",
		func(ctx context.Context, params []any) (any, error) {
			aor, err := rpc.String(params, 1)
			if err != nil {
				return nil, err
			}
			if len(p.Mods.Usrloc.Lookup(aor)) == 0 {
				return nil, rpc.Errorf(404, "AOR not found in location table")
			}
			if err := p.Mods.Usrloc.Remove(aor); err != nil {
				return nil, err
			}
			return "Ok.", nil
		})
}

func (p *Proxy) ulDump() []rpc.ULDomain {
	byDomain := map[string]*rpc.ULDomain{}
	var order []string
	for _, r := range p.Mods.Usrloc.Dump() {
		d := byDomain[r.Domain]
		if d == nil {
			d = &rpc.ULDomain{Name: r.Domain, Size: 1024}
			byDomain[r.Domain] = d
			order = append(order, r.Domain)
		}
		d.Records = append(d.Records, ulRecord(r.AOR, r.Contacts))
	}
	out := []rpc.ULDomain{}
	for _, n := range order {
		out = append(out, *byDomain[n])
	}
	if len(out) == 0 {
		out = append(out, rpc.ULDomain{Name: "location", Size: 1024})
	}
	return out
}

func ulRecord(aor string, cs []usrloc.Contact) rpc.ULRecord {
	r := rpc.ULRecord{AoR: aor}
	for _, c := range cs {
		q := -1.0
		if c.Q >= 0 {
			q = float64(c.Q) / 1000
		}
		r.Contacts = append(r.Contacts, rpc.ULContact{Address: c.URI, Expires: c.Expires, Q: q, CallID: c.CallID,
			CSeq: c.CSeq, UserAgent: c.UserAgent, Received: c.Received, Path: c.Path, Socket: c.Socket,
			Flags: c.Flags, CFlags: c.CFlags, Methods: c.Methods, Ruid: c.RUID, Instance: c.Instance,
			RegID: c.RegID, LastModified: c.LastModified})
	}
	return r
}

// contactCount counts registered contacts for the metrics gauge.
func (p *Proxy) contactCount() float64 {
	n := 0
	for _, r := range p.Mods.Usrloc.Dump() {
		n += len(r.Contacts)
	}
	return float64(n)
}

var _ = metrics.GaugeRegisteredContacts
