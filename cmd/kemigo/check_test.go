package main

import (
	"encoding/json"
	"testing"

	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/pybridge"
	"github.com/rs/zerolog"
)

func TestCheckFindings(t *testing.T) {
	table := proxy.ExportTable()
	if err := pybridge.Init(table); err != nil {
		t.Fatal(err)
	}
	eng, err := pybridge.New(pybridge.Options{Script: "testdata/checkme.py", Workers: 1, Single: true, Table: table}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	out, err := runCheck(eng, "testdata/checkme.py", table)
	if err != nil {
		t.Fatal(err)
	}
	var fs []struct {
		Line int
		Msg  string
	}
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatal(err)
	}
	want := map[int]string{
		11: "KSR.sl.sl_send_reply() takes 2 arguments, 1 given",
		12: "KSR.dispatcher.ds_select_dst: kemigo does not implement the KSR.dispatcher module",
		13: `KSR.tm.t_on_failure("nowhere"): the handler has no callable nowhere`,
		16: "KSR.nosuchfn: kemigo does not implement this function",
	}
	if len(fs) != len(want) {
		t.Fatalf("findings %+v", fs)
	}
	for _, f := range fs {
		if want[f.Line] != f.Msg {
			t.Errorf("line %d: %q, want %q", f.Line, f.Msg, want[f.Line])
		}
	}
}
