package sipmsg

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// headerList is what *sip.Request and *sip.Response offer to edit headers.
type headerList interface {
	Headers() []sip.Header
	RemoveHeader(name string) bool
	AppendHeader(h sip.Header)
}

// ApplyEdits applies the queued header edits (m.Edits) to dst, an outgoing
// copy of m's message, the way Kamailio applies lumps when it builds the
// buffer it sends:
//
//   - positions (insert, append_after, insert_before) and removals refer to
//     the headers dst has when ApplyEdits is called, which must be the
//     received ones: call it on a fresh clone, before adding the proxy's
//     own Via or Record-Route;
//   - a removal never removes a header added by another edit (a lump only
//     deletes bytes of the received buffer);
//   - edits at the same place keep the order they were queued in;
//   - append_after / insert_before with a header that is not there append
//     at the end / insert at the top, as kemi.c does.
//
// Header names match ignoring case, compact forms matching their long form.
func (m *Msg) ApplyEdits(dst sip.Message) {
	if len(m.Edits) == 0 || dst == nil {
		return
	}
	hl, ok := dst.(headerList)
	if !ok {
		return
	}
	orig := append([]sip.Header(nil), hl.Headers()...)
	n := len(orig)
	removed := make([]bool, n)
	gaps := make([][]sip.Header, n+1) // gaps[i]: new headers before orig[i]; gaps[n]: at the end
	first := func(name string) int {
		for i, h := range orig {
			if HeaderMatches(h, name) {
				return i
			}
		}
		return -1
	}
	for _, e := range m.Edits {
		switch e.Op {
		case EditRemove:
			for i, h := range orig {
				if HeaderMatches(h, e.Anchor) {
					removed[i] = true
				}
			}
		case EditAppend:
			gaps[n] = append(gaps[n], ParseEditHeaders(e.Text)...)
		case EditInsert:
			gaps[0] = append(gaps[0], ParseEditHeaders(e.Text)...)
		case EditAppendAfter:
			at := n
			if i := first(e.Anchor); i >= 0 {
				at = i + 1
			}
			gaps[at] = append(gaps[at], ParseEditHeaders(e.Text)...)
		case EditInsertBefore:
			at := 0
			if i := first(e.Anchor); i >= 0 {
				at = i
			}
			gaps[at] = append(gaps[at], ParseEditHeaders(e.Text)...)
		}
	}
	out := make([]sip.Header, 0, n+len(m.Edits))
	for i := 0; i <= n; i++ {
		out = append(out, gaps[i]...)
		if i < n && !removed[i] {
			out = append(out, orig[i])
		}
	}
	// sipgo has no "set all headers": empty the list (RemoveHeader drops
	// the first header with that exact name, i.e. the head) and refill it,
	// so its fast-access pointers (Via(), From(), ...) are rebuilt.
	for hs := hl.Headers(); len(hs) > 0; hs = hl.Headers() {
		if !hl.RemoveHeader(hs[0].Name()) {
			break
		}
	}
	for _, h := range out {
		hl.AppendHeader(h)
	}
}

// ParseEditHeaders parses header text as given to hdr.append
// ("Name: value\r\n", possibly several lines, folded lines joined) into
// headers, typed by sipgo's parser where it knows the name (so an added
// Route or Via is seen by sipgo), generic otherwise. Lines without a colon
// are skipped.
func ParseEditHeaders(text string) []sip.Header {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(lines) > 0 {
			lines[len(lines)-1] += " " + strings.TrimSpace(l)
			continue
		}
		lines = append(lines, l)
	}
	parser := sip.HeadersParser(sip.DefaultHeadersParser())
	var out []sip.Header
	for _, l := range lines {
		i := strings.IndexByte(l, ':')
		if i <= 0 {
			continue
		}
		hs, err := parser.ParseHeader(nil, []byte(l))
		if err != nil || len(hs) == 0 {
			hs = []sip.Header{sip.NewHeader(strings.TrimSpace(l[:i]), strings.TrimSpace(l[i+1:]))}
		}
		out = append(out, hs...)
	}
	return out
}

// QueueReplace queues the replacement of every header named name by text
// (raw "Name: value\r\n"), placed where the first one was. It is how
// writes to $fu, $tU, ... are done: as queued edits, invisible to later
// reads, like Kamailio's lumps. A second call for the same name updates
// the pending text instead of adding a second header.
func (m *Msg) QueueReplace(name, text string) {
	if i := m.pendingReplace(name); i >= 0 {
		m.Edits[i].Text = text
		return
	}
	a := strings.ToLower(strings.TrimSpace(name))
	m.QueueEdit(HeaderEdit{Op: EditInsertBefore, Text: text, Anchor: a})
	m.QueueEdit(HeaderEdit{Op: EditRemove, Anchor: a})
}

// PendingReplace returns the text queued by QueueReplace for header name.
func (m *Msg) PendingReplace(name string) (string, bool) {
	if i := m.pendingReplace(name); i >= 0 {
		return m.Edits[i].Text, true
	}
	return "", false
}

// pendingReplace finds an insert_before(name) directly followed by a
// remove(name): the pair QueueReplace queues.
func (m *Msg) pendingReplace(name string) int {
	want := CanonicalName(name)
	for i := len(m.Edits) - 2; i >= 0; i-- {
		e, r := m.Edits[i], m.Edits[i+1]
		if e.Op == EditInsertBefore && r.Op == EditRemove &&
			CanonicalName(e.Anchor) == want && CanonicalName(r.Anchor) == want {
			return i
		}
	}
	return -1
}
