package kemi

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

func TestMsgLogger(t *testing.T) {
	var buf bytes.Buffer
	base := zerolog.New(&buf).With().Str("module", "x").Logger()
	l := MsgLogger(base, 3, "abc@host")
	l.Info().Str("k", "v").Msg("hello")
	var first map[string]any
	if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"module": "x", "worker": 3.0, "callid": "abc@host", "k": "v", "message": "hello"} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v (event %v)", k, first[k], want, first)
		}
	}
	// the base logger is unchanged
	buf.Reset()
	base.Info().Msg("plain")
	if bytes.Contains(buf.Bytes(), []byte("callid")) {
		t.Errorf("base logger got the message fields: %s", buf.Bytes())
	}
}
