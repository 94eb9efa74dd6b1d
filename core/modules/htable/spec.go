package htable

import (
	"fmt"
	"strconv"
	"strings"
)

// Spec is one parsed table definition (the "htable" modparam).
type Spec struct {
	Name         string
	Size         int   // the size attribute (slots = 2^Size, see slotCount)
	AutoExpire   int64 // seconds; 0 = items do not expire by default
	HasInitVal   bool
	InitVal      int64
	UpdateExpire bool // reset an item's expiry when it is updated (default true)
	DMQReplicate int  // accepted and ignored (no DMQ in kemigo)
}

// ParseSpec parses "name=>attr=value;attr=value;..." as Kamailio's
// ht_table_spec does. Unknown attributes, and the database ones kemigo does
// not support (dbtable, cols, dbmode), are errors naming the attribute.
func ParseSpec(s string) (Spec, error) {
	sp := Spec{Size: 4, UpdateExpire: true}
	i := strings.Index(s, "=>")
	if i < 0 {
		return sp, fmt.Errorf("htable: %q: missing \"=>\" after the table name", s)
	}
	sp.Name = strings.TrimSpace(s[:i])
	if sp.Name == "" {
		return sp, fmt.Errorf("htable: %q: empty table name", s)
	}
	for _, part := range strings.Split(s[i+2:], ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		value = strings.Trim(strings.TrimSpace(value), "\"")
		bad := func() error {
			return fmt.Errorf("htable %s: invalid value %q for attribute %s", sp.Name, value, name)
		}
		switch name {
		case "size":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return sp, bad()
			}
			sp.Size = int(n)
		case "autoexpire":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return sp, bad()
			}
			sp.AutoExpire = int64(n)
		case "initval":
			n, err := strconv.ParseInt(value, 10, 32)
			if err != nil {
				return sp, bad()
			}
			sp.HasInitVal, sp.InitVal = true, n
		case "updateexpire":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return sp, bad()
			}
			sp.UpdateExpire = n != 0
		case "dmqreplicate":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return sp, bad()
			}
			sp.DMQReplicate = int(n)
		case "dbtable", "cols", "dbmode":
			return sp, fmt.Errorf("htable %s: attribute %s is not supported (database-backed tables are not implemented)", sp.Name, name)
		default:
			return sp, fmt.Errorf("htable %s: unknown attribute %q", sp.Name, name)
		}
	}
	return sp, nil
}

// maxSlots caps the lock shards of one table. Kamailio's size attribute
// is the log2 of its bucket count; in kemigo buckets are only lock shards
// (items live in Go maps), so very large sizes buy nothing.
const maxSlots = 1 << 14

// slotCount maps the size attribute to a slot count as ht_add_table does:
// size <= 1 gives 8, size > 31 gives 2^14, else 2^size (capped at 2^14).
func slotCount(size int) int {
	switch {
	case size <= 1:
		return 8
	case size >= 14:
		return maxSlots
	}
	return 1 << uint(size)
}
