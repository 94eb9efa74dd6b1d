package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	return string(b)
}

func TestExposition(t *testing.T) {
	m := New()
	m.IncRequest("INVITE")
	m.IncRequest("INVITE")
	m.IncRequest("FOO")
	m.IncReply(200)
	m.IncReply(488)
	m.IncReply(42)
	m.IncRelayed(180)
	m.ObserveRoute("ksr_request_route", 300*time.Microsecond)
	m.ObserveRoute("ksr_failure_manage", 2*time.Second)
	m.IncException("ksr_request_route")
	m.IncOverload()
	m.AddBusy(1, 1500*time.Millisecond)
	m.SetQueueFunc(func() []int { return []int{3, 0} })
	m.SetGaugeFunc(GaugeActiveTransactions, func() float64 { return 7 })
	if err := m.SetGaugeFunc("dialogs_active", func() float64 { return 2 }); err != nil {
		t.Fatal(err)
	}
	if err := m.SetGaugeFunc("bad name", func() float64 { return 2 }); err == nil {
		t.Fatal("bad gauge name accepted")
	}
	m.SetBuildInfo("0.1.0", "3.12")

	out := scrape(t, m)
	for _, want := range []string{
		`kemigo_sip_requests_received_total{method="INVITE"} 2`,
		`kemigo_sip_requests_received_total{method="OTHER"} 1`,
		`kemigo_sip_requests_received_total{method="BYE"} 0`,
		`kemigo_sip_replies_sent_total{code="200"} 1`,
		`kemigo_sip_replies_sent_total{code="488"} 1`,
		`kemigo_sip_replies_sent_total{code="other"} 1`,
		`kemigo_sip_replies_relayed_total{code="180"} 1`,
		`kemigo_route_duration_seconds_bucket{route="ksr_request_route",le="0.0005"} 1`,
		`kemigo_route_duration_seconds_bucket{route="ksr_request_route",le="0.00025"} 0`,
		`kemigo_route_duration_seconds_count{route="ksr_failure_manage"} 1`,
		`kemigo_route_duration_seconds_bucket{route="ksr_failure_manage",le="1"} 0`,
		`kemigo_route_duration_seconds_bucket{route="ksr_request_route",le="1e-05"} 0`,
		`kemigo_python_exceptions_total{route="ksr_request_route"} 1`,
		`kemigo_overload_rejections_total 1`,
		`kemigo_worker_busy_seconds_total{worker="0"} 0`,
		`kemigo_worker_busy_seconds_total{worker="1"} 1.5`,
		`kemigo_worker_queue_depth{worker="0"} 3`,
		`kemigo_worker_queue_depth{worker="1"} 0`,
		`kemigo_tm_active_transactions 7`,
		`kemigo_usrloc_registered_contacts 0`,
		`kemigo_dialogs_active 2`,
		`kemigo_build_info{python="3.12",version="0.1.0"} 1`,
	} {
		if !strings.Contains("\n"+out, "\n"+want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
	for _, want := range []string{"go_goroutines ", "process_start_time_seconds "} {
		if !strings.Contains("\n"+out, "\n"+want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	// Replacing a gauge function keeps one series.
	m.SetGaugeFunc(GaugeActiveTransactions, func() float64 { return 9 })
	if out := scrape(t, m); !strings.Contains(out, "kemigo_tm_active_transactions 9\n") {
		t.Error("gauge function not replaced")
	}
}

func TestRouteNamesBounded(t *testing.T) {
	m := New()
	for i := 0; i < maxNames+50; i++ {
		m.ObserveRoute("r"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), time.Millisecond)
	}
	if n := len(*m.routes.m.Load()); n > maxNames {
		t.Fatalf("%d route series", n)
	}
	if !strings.Contains(scrape(t, m), `route="other"`) {
		t.Error("overflow names not counted as other")
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.IncRequest("INVITE")
	m.IncReply(200)
	m.IncRelayed(200)
	m.ObserveRoute("x", time.Second)
	m.IncException("x")
	m.IncOverload()
	m.AddBusy(0, time.Second)
	m.SetWorkers(2)
	m.SetQueueFunc(nil)
	m.SetBuildInfo("", "")
	if err := m.SetGaugeFunc("x", nil); err != nil {
		t.Fatal(err)
	}
}

func TestHotPathNoAlloc(t *testing.T) {
	m := New()
	m.ObserveRoute("ksr_request_route", time.Millisecond)
	m.IncReply(404)
	n := testing.AllocsPerRun(1000, func() {
		m.IncRequest("REGISTER")
		m.IncRequest("XYZ")
		m.ObserveRoute("ksr_request_route", 120*time.Microsecond)
		m.IncReply(404)
		m.IncRelayed(200)
		m.AddBusy(0, time.Microsecond)
	})
	if n != 0 {
		t.Fatalf("%v allocations per observation set", n)
	}
}

func BenchmarkObserveRouteIncRequest(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.IncRequest("INVITE")
			m.ObserveRoute("ksr_request_route", 150*time.Microsecond)
		}
	})
}

func BenchmarkObserveRouteIncRequestSerial(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.IncRequest("INVITE")
		m.ObserveRoute("ksr_request_route", 150*time.Microsecond)
	}
}
