package pike

import (
	"net/netip"
	"sync"
	"time"
)

// Positions in the two-window counters.
const (
	prev = 0
	curr = 1
)

const maxHits = 65534 // counters saturate, as Kamailio's unsigned short

// node is one byte of an address prefix (Kamailio's pike_ip_node_t).
type node struct {
	b        byte
	parent   *node
	kids     []*node
	hits     [2]int32 // requests counted on this prefix
	leafHits [2]int32 // requests of the whole address (ipLeaf nodes)
	ipLeaf   bool     // the node is a whole address
	red      bool     // blocked
	win      int64    // window the counters belong to
	expires  time.Time
}

func (n *node) kid(b byte) *node {
	for _, k := range n.kids {
		if k.b == b {
			return k
		}
	}
	return nil
}

func (n *node) removeKid(k *node) {
	for i, x := range n.kids {
		if x == k {
			n.kids = append(n.kids[:i], n.kids[i+1:]...)
			return
		}
	}
}

// tree is one address family: 256 branches by first byte, each with its
// own lock (Kamailio locks per branch too).
type tree struct {
	branch [256]struct {
		mu   sync.Mutex
		root *node
	}
}

func inc(p *int32) {
	if *p < maxHits {
		*p++
	}
}

func (m *Module) hotNonLeaf(n *node) bool {
	q := m.max >> 2
	return n.hits[prev] >= q || n.hits[curr] >= q || (n.hits[prev]+n.hits[curr])>>1 >= q
}

func (m *Module) hotLeaf(n *node) bool {
	return n.leafHits[prev] >= m.max || n.leafHits[curr] >= m.max ||
		(n.leafHits[prev]+n.leafHits[curr])>>1 >= m.max
}

func (m *Module) warm(n *node) bool { return n.hits[curr] >= m.max>>2 }

// refresh brings n's counters to window w, as Kamailio's swap timer does
// once per window: the current counters become the previous ones, and a
// blocked address that is no longer hot is unblocked. unblocked (when not
// nil) is called for each unblocking.
func (m *Module) refresh(n *node, w int64, unblocked func(*node)) {
	d := w - n.win
	if d <= 0 {
		return
	}
	if d > 2 {
		d = 2 // two swaps clear everything
	}
	for ; d > 0; d-- {
		n.hits[prev], n.hits[curr] = n.hits[curr], 0
		n.leafHits[prev], n.leafHits[curr] = n.leafHits[curr], 0
		if n.red && !m.hotLeaf(n) {
			n.red = false
			if unblocked != nil {
				unblocked(n)
			}
		}
	}
	n.win = w
}

// mark counts one hit for the address key (Kamailio's mark_node plus the
// timer bookkeeping of pike_check_ipaddr). It reports whether the address
// is blocked and whether this hit blocked it.
func (m *Module) mark(t *tree, key []byte, now time.Time) (red, newRed bool) {
	w := m.window(now)
	br := &t.branch[key[0]]
	br.mu.Lock()
	defer br.mu.Unlock()
	unblocked := func(n *node) { m.logUnblock(n) }

	// longest known prefix
	var n *node
	pos := 0
	if br.root != nil {
		n = br.root
		pos = 1
		for pos < len(key) {
			k := n.kid(key[pos])
			if k == nil {
				break
			}
			n = k
			pos++
		}
	}
	switch {
	case n == nil:
		// empty branch: a node for the first byte
		br.root = &node{b: key[0], win: w, expires: now.Add(m.timeout)}
		br.root.hits[curr] = 1
	case pos == len(key):
		// the whole address is known
		m.refresh(n, w, unblocked)
		n.ipLeaf = true
		inc(&n.leafHits[curr])
		if !n.red {
			if m.hotLeaf(n) {
				n.red = true
				newRed = true
			}
		}
		red = n.red
		n.expires = now.Add(m.timeout)
	default:
		// only a prefix is known
		m.refresh(n, w, unblocked)
		inc(&n.hits[curr])
		if m.hotNonLeaf(n) {
			// split: the kid inherits part of its father's hits
			k := &node{b: key[pos], parent: n, win: w, expires: now.Add(m.timeout)}
			if n.hits[curr] >= 1 {
				k.hits[curr] = n.hits[curr] - 1
			}
			n.kids = append(n.kids, k)
		} else if len(n.kids) == 0 && m.warm(n) {
			// a tree leaf with few hits is left to expire (saves memory)
			n.expires = now.Add(m.timeout)
		}
	}
	return red, newRed
}

func (m *Module) logUnblock(n *node) {
	ip := nodeAddr(n)
	m.log.WithLevel(m.level).Str("ip", ip).Msg("pike unblocking ip " + ip)
}

// nodeAddr renders the address of a whole-address node.
func nodeAddr(n *node) string {
	var b []byte
	for x := n; x != nil; x = x.parent {
		b = append([]byte{x.b}, b...)
	}
	if a, ok := netip.AddrFromSlice(b); ok {
		return a.String()
	}
	return ""
}

// Sweep is one run of the clean timer: it brings every node to the
// current window (logging unblocked addresses) and removes the nodes
// without kids whose last counted request is remove_latency old. A
// prefix node whose last kid goes starts its own remove_latency. It
// returns the number of nodes removed.
func (m *Module) Sweep() int {
	now := m.clock()
	w := m.window(now)
	removed := 0
	for _, t := range []*tree{&m.v4, &m.v6} {
		for i := range t.branch {
			br := &t.branch[i]
			br.mu.Lock()
			if br.root != nil {
				if m.sweep(br.root, w, now, &removed) {
					br.root = nil
					removed++
				}
			}
			br.mu.Unlock()
		}
	}
	return removed
}

// sweep handles the subtree of n; it returns true when n itself must go.
func (m *Module) sweep(n *node, w int64, now time.Time, removed *int) bool {
	m.refresh(n, w, func(x *node) { m.logUnblock(x) })
	if len(n.kids) > 0 {
		for _, k := range append([]*node(nil), n.kids...) {
			if m.sweep(k, w, now, removed) {
				n.removeKid(k)
				*removed++
			}
		}
		if len(n.kids) == 0 {
			n.expires = now.Add(m.timeout)
		}
		return false
	}
	return !now.Before(n.expires)
}

// Nodes returns the number of nodes in memory (tests, statistics).
func (m *Module) Nodes() int {
	n := 0
	var count func(*node)
	count = func(x *node) {
		n++
		for _, k := range x.kids {
			count(k)
		}
	}
	for _, t := range []*tree{&m.v4, &m.v6} {
		for i := range t.branch {
			br := &t.branch[i]
			br.mu.Lock()
			if br.root != nil {
				count(br.root)
			}
			br.mu.Unlock()
		}
	}
	return n
}
