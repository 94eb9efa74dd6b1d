package proxy

import (
	"os"

	"github.com/kemigo/kemigo/core/metrics"
	"github.com/kemigo/kemigo/core/rpc"
	"github.com/kemigo/kemigo/pybridge"
)

// StartControl starts the JSON-RPC control interface (unix socket and
// loopback HTTP, which also serves /metrics). `kemigo run` calls it; tests
// that want it call it with their own [jsonrpcs] addresses.
func (p *Proxy) StartControl(version string) error {
	srv := rpc.New(p.Cfg.JSONRPCS, p.Log)
	rpc.RegisterCore(srv, version, p.started, func() []any {
		out := []any{rpc.Proc{IDX: 0, PID: os.Getpid(), DSC: "main process - attendant"}}
		for i := range p.Engine.Workers() {
			out = append(out, rpc.Proc{IDX: i + 1, PID: os.Getpid(), DSC: "python worker " + itoa(i+1)})
		}
		return out
	})
	rpc.RegisterHTable(srv, p.Mods.HTable)
	p.App = rpc.RegisterAppPython(srv, p.Reload, func() any { return rpc.KEMIAPIList(p.Table) })
	rpc.RegisterStats(srv, func() map[string]any {
		m := map[string]any{
			"core:rcv_requests_replies": p.Received.Load(),
			"core:overload_rejected":    p.Overloaded.Load(),
			"app_python:exceptions":     p.Exceptions.Load(),
		}
		rpc.AddStats(m, "sl", p.Mods.SL.Stats())
		rpc.AddStats(m, "tm", p.Mods.TM.StatsSnapshot())
		return m
	})
	rpc.RegisterTM(srv, func() rpc.TMStats {
		s := p.Mods.TM.StatsSnapshot()
		u := func(k string) uint64 {
			switch v := s[k].(type) {
			case uint64:
				return v
			case int64:
				return uint64(v)
			}
			return 0
		}
		return rpc.TMStats{Current: u("current"), Total: u("total"), TotalLocal: u("total_local"), Created: u("total"),
			C2xx: u("2xx"), C3xx: u("3xx"), C4xx: u("4xx"), C5xx: u("5xx"), C6xx: u("6xx")}
	})
	p.registerModuleRPC(srv)
	srv.HandleHTTP("GET /metrics", p.Metrics.Handler())
	if err := srv.Start(); err != nil {
		return err
	}
	p.RPC = srv
	return nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// initMetrics creates the metrics and their gauges.
func (p *Proxy) initMetrics() {
	p.Metrics = metrics.New()
	p.Metrics.SetBuildInfo("kemigo", pybridge.PyVersion())
	p.Metrics.SetWorkers(len(p.Engine.Workers()))
	p.Metrics.SetQueueFunc(func() []int {
		out := make([]int, len(p.Engine.Workers()))
		for i := range out {
			out[i] = p.Engine.QueueLen(i)
		}
		return out
	})
	_ = p.Metrics.SetGaugeFunc(metrics.GaugeActiveTransactions, func() float64 { return float64(p.Mods.TM.Active()) })
	_ = p.Metrics.SetGaugeFunc(metrics.GaugeRegisteredContacts, p.contactCount)
}
