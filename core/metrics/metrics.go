// Package metrics holds kemigo's Prometheus metrics in a private registry,
// served by Handler on /metrics. The observation methods are made for the
// SIP hot path: the common label values are resolved once, lookups of the
// others are lock-free map reads after their first use, and none of them
// allocates. Every method is a no-op on a nil *Metrics, so metrics can be
// left out (tests, tools).
package metrics

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "kemigo"

// Names of the predeclared gauge functions (SetGaugeFunc).
const (
	GaugeActiveTransactions = "tm_active_transactions"
	GaugeRegisteredContacts = "usrloc_registered_contacts"
)

// Label value limits: methods outside the known set count as "OTHER";
// codes outside 100-699 as "other"; route names after the first
// maxNames distinct ones as "other" (script-chosen names stay bounded).
const (
	maxNames   = 256
	maxWorkers = 4096
	otherLabel = "other"
)

// RouteBuckets are the route duration buckets, 10µs to 1s.
var RouteBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
}

// sipMethods are the request methods with a pre-resolved counter.
var sipMethods = [...]string{
	"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "SUBSCRIBE",
	"NOTIFY", "PUBLISH", "MESSAGE", "INFO", "PRACK", "UPDATE", "REFER",
}

func methodIndex(m string) int {
	switch m {
	case "INVITE":
		return 0
	case "ACK":
		return 1
	case "BYE":
		return 2
	case "CANCEL":
		return 3
	case "REGISTER":
		return 4
	case "OPTIONS":
		return 5
	case "SUBSCRIBE":
		return 6
	case "NOTIFY":
		return 7
	case "PUBLISH":
		return 8
	case "MESSAGE":
		return 9
	case "INFO":
		return 10
	case "PRACK":
		return 11
	case "UPDATE":
		return 12
	case "REFER":
		return 13
	}
	return -1
}

// commonCodes get their reply series at start (at 0).
var commonCodes = []int{100, 180, 183, 200, 202, 401, 403, 404, 407, 408, 480, 483, 486, 487, 500, 503}

// Metrics is one registry and its metrics.
type Metrics struct {
	reg *prometheus.Registry

	reqVec   *prometheus.CounterVec
	reqFast  [len(sipMethods)]prometheus.Counter
	reqOther prometheus.Counter

	sent    codeCounters
	relayed codeCounters

	routes     nameCache[prometheus.Observer]
	exceptions nameCache[prometheus.Counter]
	overload   prometheus.Counter

	queueFn atomic.Pointer[func() []int]
	busy    [maxWorkers]atomic.Int64 // nanoseconds
	busyN   atomic.Int32             // workers with a busy series

	gaugeMu sync.Mutex
	gauges  map[string]*atomic.Pointer[func() float64]

	info *prometheus.GaugeVec
}

// New builds the metrics in a private registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), gauges: map[string]*atomic.Pointer[func() float64]{}}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.reqVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sip_requests_received_total",
		Help: "SIP requests received, by method (unknown methods as OTHER).",
	}, []string{"method"})
	for i, name := range sipMethods {
		m.reqFast[i] = m.reqVec.WithLabelValues(name)
	}
	m.reqOther = m.reqVec.WithLabelValues("OTHER")

	m.sent.init(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sip_replies_sent_total",
		Help: "SIP replies generated and sent by kemigo (sl, tm), by code.",
	}, []string{"code"}))
	m.relayed.init(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sip_replies_relayed_total",
		Help: "SIP replies relayed downstream, by code.",
	}, []string{"code"}))

	routeVec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "route_duration_seconds",
		Help:    "Time spent running a KEMI callback, by callback name.",
		Buckets: RouteBuckets,
	}, []string{"route"})
	m.routes.init(func(n string) prometheus.Observer { return routeVec.WithLabelValues(n) },
		"ksr_request_route", "ksr_reply_route", "ksr_onsend_route")
	excVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "python_exceptions_total",
		Help: "Unhandled Python exceptions in KEMI callbacks, by callback name.",
	}, []string{"route"})
	m.exceptions.init(func(n string) prometheus.Counter { return excVec.WithLabelValues(n) }, "ksr_request_route")

	m.overload = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "overload_rejections_total",
		Help: "Messages refused because the worker queue was full (503 sent to requests).",
	})
	m.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "kemigo version and the Python it embeds (value 1).",
	}, []string{"version", "python"})

	m.reg.MustRegister(m.reqVec, m.sent.vec, m.relayed.vec, routeVec, excVec, m.overload, m.info,
		&workerCollector{m: m,
			queue: prometheus.NewDesc(namespace+"_worker_queue_depth",
				"Jobs waiting in each Python worker's queue.", []string{"worker"}, nil),
			busy: prometheus.NewDesc(namespace+"_worker_busy_seconds_total",
				"Time each Python worker spent running jobs.", []string{"worker"}, nil),
		})
	m.mustGauge(GaugeActiveTransactions, "Transactions currently in the tm table.")
	m.mustGauge(GaugeRegisteredContacts, "Contacts currently registered in usrloc.")
	return m
}

// Registry returns the registry, for collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the exposition (text or OpenMetrics as negotiated).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// IncRequest counts a received request.
func (m *Metrics) IncRequest(method string) {
	if m == nil {
		return
	}
	if i := methodIndex(method); i >= 0 {
		m.reqFast[i].Inc()
		return
	}
	m.reqOther.Inc()
}

// IncReply counts a reply kemigo generated and sent.
func (m *Metrics) IncReply(code int) {
	if m != nil {
		m.sent.inc(code)
	}
}

// IncRelayed counts a relayed reply.
func (m *Metrics) IncRelayed(code int) {
	if m != nil {
		m.relayed.inc(code)
	}
}

// ObserveRoute records how long the callback name ran.
func (m *Metrics) ObserveRoute(name string, d time.Duration) {
	if m != nil {
		m.routes.get(name).Observe(d.Seconds())
	}
}

// IncException counts an unhandled Python exception in route.
func (m *Metrics) IncException(route string) {
	if m != nil {
		m.exceptions.get(route).Inc()
	}
}

// IncOverload counts a message refused because its worker's queue was full.
func (m *Metrics) IncOverload() {
	if m != nil {
		m.overload.Inc()
	}
}

// AddBusy adds d to the busy time of worker (0-based).
func (m *Metrics) AddBusy(worker int, d time.Duration) {
	if m == nil || worker < 0 || worker >= maxWorkers {
		return
	}
	m.busy[worker].Add(int64(d))
	for {
		n := m.busyN.Load()
		if int32(worker) < n || m.busyN.CompareAndSwap(n, int32(worker)+1) {
			return
		}
	}
}

// SetWorkers makes the busy series of workers 0..n-1 exist (at 0) before
// they first run.
func (m *Metrics) SetWorkers(n int) {
	if m == nil || n <= 0 {
		return
	}
	if n > maxWorkers {
		n = maxWorkers
	}
	for {
		cur := m.busyN.Load()
		if int32(n) <= cur || m.busyN.CompareAndSwap(cur, int32(n)) {
			return
		}
	}
}

// SetQueueFunc sets the function giving each worker's queue length at
// scrape time (e.g. Engine.QueueLen over Engine.Workers()).
func (m *Metrics) SetQueueFunc(f func() []int) {
	if m != nil {
		m.queueFn.Store(&f)
	}
}

// SetBuildInfo sets kemigo_build_info{version, python} to 1.
func (m *Metrics) SetBuildInfo(version, python string) {
	if m != nil {
		m.info.Reset()
		m.info.WithLabelValues(version, python).Set(1)
	}
}

var gaugeName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// SetGaugeFunc sets the function read at scrape time for the gauge
// kemigo_<name>. GaugeActiveTransactions and GaugeRegisteredContacts exist
// from the start (0 until set); another name creates its gauge on first
// use. Setting a name again replaces its function.
func (m *Metrics) SetGaugeFunc(name string, f func() float64) error {
	if m == nil {
		return nil
	}
	if !gaugeName.MatchString(name) {
		return errors.New("metrics: invalid gauge name " + strconv.Quote(name))
	}
	m.gaugeMu.Lock()
	p := m.gauges[name]
	m.gaugeMu.Unlock()
	if p == nil {
		var err error
		if p, err = m.newGauge(name, "kemigo "+name+"."); err != nil {
			return err
		}
	}
	p.Store(&f)
	return nil
}

func (m *Metrics) mustGauge(name, help string) {
	if _, err := m.newGauge(name, help); err != nil {
		panic(err)
	}
}

func (m *Metrics) newGauge(name, help string) (*atomic.Pointer[func() float64], error) {
	m.gaugeMu.Lock()
	defer m.gaugeMu.Unlock()
	if p := m.gauges[name]; p != nil {
		return p, nil
	}
	p := &atomic.Pointer[func() float64]{}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help},
		func() float64 {
			if f := p.Load(); f != nil {
				return (*f)()
			}
			return 0
		})
	if err := m.reg.Register(g); err != nil {
		return nil, err
	}
	m.gauges[name] = p
	return p, nil
}

// codeCounters is a counter vector by reply code whose children are
// resolved once per code.
type codeCounters struct {
	vec    *prometheus.CounterVec
	byCode [600]atomic.Pointer[prometheus.Counter] // 100..699
	other  prometheus.Counter
}

func (c *codeCounters) init(vec *prometheus.CounterVec) {
	c.vec = vec
	c.other = vec.WithLabelValues(otherLabel)
	for _, code := range commonCodes {
		c.slot(code)
	}
}

func (c *codeCounters) slot(code int) prometheus.Counter {
	p := &c.byCode[code-100]
	if v := p.Load(); v != nil {
		return *v
	}
	ctr := c.vec.WithLabelValues(strconv.Itoa(code))
	p.CompareAndSwap(nil, &ctr)
	return *p.Load()
}

func (c *codeCounters) inc(code int) {
	if code < 100 || code > 699 {
		c.other.Inc()
		return
	}
	c.slot(code).Inc()
}

// nameCache maps label values to resolved children: a copy-on-write map
// read without locks, bounded to maxNames values.
type nameCache[T any] struct {
	mu    sync.Mutex
	m     atomic.Pointer[map[string]T]
	make  func(string) T
	other T
}

func (c *nameCache[T]) init(mk func(string) T, names ...string) {
	c.make = mk
	c.other = mk(otherLabel)
	mp := make(map[string]T, len(names))
	for _, n := range names {
		mp[n] = mk(n)
	}
	c.m.Store(&mp)
}

func (c *nameCache[T]) get(name string) T {
	if v, ok := (*c.m.Load())[name]; ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.m.Load()
	if v, ok := old[name]; ok {
		return v
	}
	if len(old) >= maxNames {
		return c.other
	}
	mp := make(map[string]T, len(old)+1)
	for k, v := range old {
		mp[k] = v
	}
	v := c.make(name)
	mp[name] = v
	c.m.Store(&mp)
	return v
}

// workerCollector reports the per-worker queue depth and busy time.
type workerCollector struct {
	m           *Metrics
	queue, busy *prometheus.Desc
}

func (w *workerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- w.queue
	ch <- w.busy
}

func (w *workerCollector) Collect(ch chan<- prometheus.Metric) {
	if f := w.m.queueFn.Load(); f != nil {
		for i, n := range (*f)() {
			ch <- prometheus.MustNewConstMetric(w.queue, prometheus.GaugeValue, float64(n), strconv.Itoa(i))
		}
	}
	n := int(w.m.busyN.Load())
	for i := 0; i < n; i++ {
		ch <- prometheus.MustNewConstMetric(w.busy, prometheus.CounterValue,
			float64(w.m.busy[i].Load())/1e9, strconv.Itoa(i))
	}
}
