package rtpengine

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// writeJSON renders a decoded bencode value as JSON in the dictionary's
// order, as Kamailio's srjson does for rtpengine_query_v: compact, or
// pretty (cJSON style: one member per line, tab indents, "key":<tab>value,
// arrays on one line).
func writeJSON(b *strings.Builder, v any, pretty bool, depth int) {
	switch x := v.(type) {
	case string:
		writeJSONString(b, x)
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
				if pretty {
					b.WriteByte(' ')
				}
			}
			writeJSON(b, e, pretty, depth+1)
		}
		b.WriteByte(']')
	case *Dict:
		if x.Len() == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if pretty {
				b.WriteByte('\n')
				b.WriteString(strings.Repeat("\t", depth+1))
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			if pretty {
				b.WriteByte('\t')
			}
			writeJSON(b, x.vals[k], pretty, depth+1)
		}
		if pretty {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat("\t", depth))
		}
		b.WriteByte('}')
	default:
		b.WriteString("null")
	}
}

func writeJSONString(b *strings.Builder, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}
