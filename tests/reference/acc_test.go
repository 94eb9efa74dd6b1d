package reference

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/internal/siptest"
)

// accRow is what the tests read back from acc and missed_calls.
type accRow struct {
	method, fromTag, toTag, callID, code, reason string
	srcUser, srcIP, dstUser, dstDomain           string
}

func (e *env) accRows(t *testing.T, table, callID string) []accRow {
	t.Helper()
	rows, err := e.db.Query(e.db.Rebind("SELECT method, from_tag, to_tag, callid, sip_code, sip_reason, src_user, src_ip, dst_user, dst_domain FROM "+
		table+" WHERE callid = ? ORDER BY id"), callID)
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	defer rows.Close()
	var out []accRow
	for rows.Next() {
		var r accRow
		if err := rows.Scan(&r.method, &r.fromTag, &r.toTag, &r.callID, &r.code, &r.reason, &r.srcUser, &r.srcIP, &r.dstUser, &r.dstDomain); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAccounting: acc with the cfg's flags. The script sets FLT_ACC (1)
// on every INVITE and on BYE (with FLT_ACCFAILED, 3), and FLT_ACCMISSED
// (2) on INVITEs routed through usrloc; db_flag 1 writes acc rows,
// db_missed_flag 2 missed_calls rows, with the db_extra columns.
func TestAccounting(t *testing.T) {
	e := startEnv(t)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Run("answered-call", func(t *testing.T) {
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, a, b)
				c := e.establish(t, a, b)
				e.hangup(t, a, b, c)
				e.waitCount(t, 2, "SELECT count(*) FROM acc WHERE callid = ?", c.inv.CallID)
				rows := e.accRows(t, "acc", c.inv.CallID)
				toTag := c.dlg.RemoteTag
				want := []accRow{
					{"INVITE", c.inv.FromTag, toTag, c.inv.CallID, "200", "OK", a.User, "127.0.0.1", b.User, domain},
					{"BYE", c.inv.FromTag, toTag, c.inv.CallID, "200", "OK", a.User, "127.0.0.1", b.User, domain},
				}
				for i := range want {
					// $rU of the BYE is the contact's user, bob as well
					if rows[i] != want[i] {
						t.Errorf("acc row %d:\n got %+v\nwant %+v", i, rows[i], want[i])
					}
				}
				if n := e.count(t, "SELECT count(*) FROM missed_calls WHERE callid = ?", c.inv.CallID); n != 0 {
					t.Errorf("%d missed_calls rows for an answered call", n)
				}
				// log_flag 1: the same two records in the log
				for _, m := range []string{"method=INVITE", "method=BYE"} {
					e.logs.WaitFor(t, "ACC "+m, siptest.All(siptest.MessageContains("ACC: transaction answered:"),
						siptest.MessageContains(m), siptest.MessageContains("call_id="+c.inv.CallID+";code=200")))
				}
			})
			for _, code := range []int{486, 404} {
				t.Run("missed-"+itoa(code), func(t *testing.T) {
					a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
					e.register(t, a, b)
					inv := authRequest(t, a, a.NewRequest("INVITE", e.uri("bob")))
					in := b.ExpectRequest("INVITE")
					sent := b.Reply(in, code, "")
					res := a.ExpectFinal(inv)
					siptest.AssertStatus(t, res, code, "")
					a.Send(inv.ACKFor(res))
					b.ExpectRequest("ACK")
					e.waitCount(t, 1, "SELECT count(*) FROM missed_calls WHERE callid = ?", inv.CallID)
					rows := e.accRows(t, "missed_calls", inv.CallID)
					want := accRow{"INVITE", inv.FromTag, toTagOf(sent), inv.CallID, itoa(code), sent.Reason, a.User, "127.0.0.1", b.User, domain}
					if rows[0] != want {
						t.Errorf("missed_calls row:\n got %+v\nwant %+v", rows[0], want)
					}
					// the missed-call flag is cleared before the acc step:
					// an INVITE has no FLT_ACCFAILED, so no acc row
					if n := e.count(t, "SELECT count(*) FROM acc WHERE callid = ?", inv.CallID); n != 0 {
						t.Errorf("%d acc rows for a missed call", n)
					}
					e.logs.WaitFor(t, "ACC: call missed", siptest.All(siptest.MessageContains("ACC: call missed:"),
						siptest.MessageContains("call_id="+inv.CallID+";code="+itoa(code))))
				})
			}
			t.Run("cancelled-call-missed-487", func(t *testing.T) {
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, a, b)
				inv := authRequest(t, a, a.NewRequest("INVITE", e.uri("bob")))
				in := b.ExpectRequest("INVITE")
				b.Reply(in, 180, "")
				a.ExpectResponse(inv) // 100
				a.ExpectResponse(inv) // 180
				cancel := inv.Cancel()
				a.Send(cancel)
				a.ExpectFinal(cancel)
				b.Reply(b.ExpectRequest("CANCEL"), 200, "")
				b.Reply(in, 487, "")
				res := a.ExpectFinal(inv)
				a.Send(inv.ACKFor(res))
				e.waitCount(t, 1, "SELECT count(*) FROM missed_calls WHERE callid = ? AND method = 'INVITE' AND sip_code = '487'", inv.CallID)
				// report_cancels 0: the CANCEL itself is not accounted
				if n := e.count(t, "SELECT count(*) FROM acc WHERE callid = ?", inv.CallID); n != 0 {
					t.Errorf("%d acc rows for a cancelled call", n)
				}
			})
			t.Run("unregistered-404-not-missed", func(t *testing.T) {
				// lookup fails before FLT_ACCMISSED is set, and the
				// INVITE has no FLT_ACCFAILED: nothing is written (as in
				// Kamailio with this script)
				a := e.ua(t, proto, "alice")
				inv := authRequest(t, a, a.NewRequest("INVITE", e.uri("carol")))
				res := a.ExpectFinal(inv)
				siptest.AssertStatus(t, res, 404, "Not Found")
				a.Send(inv.ACKFor(res))
				a.ExpectNoMore(quiet)
				for _, table := range []string{"acc", "missed_calls"} {
					if n := e.count(t, "SELECT count(*) FROM "+table+" WHERE callid = ?", inv.CallID); n != 0 {
						t.Errorf("%d %s rows for a 404 from the proxy", n, table)
					}
				}
			})
		})
	}
}

func toTagOf(res *sip.Response) string {
	tag, _ := res.To().Params.Get("tag")
	return tag
}
