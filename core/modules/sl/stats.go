package sl

import "sync/atomic"

// statNames are Kamailio's sl statistics, in its order.
var statNames = [...]string{
	"1xx_replies", "200_replies", "202_replies", "2xx_replies",
	"300_replies", "301_replies", "302_replies", "3xx_replies",
	"400_replies", "401_replies", "403_replies", "404_replies", "407_replies",
	"408_replies", "483_replies", "4xx_replies",
	"500_replies", "5xx_replies", "6xx_replies", "xxx_replies",
}

type stats struct {
	byType   [len(statNames)]atomic.Uint64
	failures atomic.Uint64
	acks     atomic.Uint64
}

// exactStat are the codes with their own counter.
var exactStat = map[int]int{200: 1, 202: 2, 300: 4, 301: 5, 302: 6, 400: 8, 401: 9, 403: 10,
	404: 11, 407: 12, 408: 13, 483: 14, 500: 16}

// statIndex maps a reply code to its counter, as update_sl_stats.
func statIndex(code int) int {
	if i, ok := exactStat[code]; ok {
		return i
	}
	switch {
	case code >= 100 && code < 200:
		return 0
	case code >= 200 && code < 300:
		return 3
	case code >= 300 && code < 400:
		return 7
	case code >= 400 && code < 500:
		return 15
	case code >= 500 && code < 600:
		return 17
	case code >= 600 && code < 700:
		return 18
	}
	return 19
}

func (s *stats) sent(code int) { s.byType[statIndex(code)].Add(1) }
func (s *stats) failure()      { s.failures.Add(1) }
func (s *stats) filteredACK()  { s.acks.Add(1) }

// Stats returns the sl statistics by Kamailio name: the per-code counters,
// sent_replies, sent_err_replies (code >= 300), failures and received_ACKs
// (ACKs absorbed by FilterACK).
func (m *Module) Stats() map[string]uint64 {
	out := make(map[string]uint64, len(statNames)+4)
	var sent, errs uint64
	for i, n := range statNames {
		v := m.stats.byType[i].Load()
		out[n] = v
		sent += v
		if i >= 4 && i != 19 {
			errs += v
		}
	}
	out["sent_replies"] = sent
	out["sent_err_replies"] = errs
	out["failures"] = m.stats.failures.Load()
	out["received_ACKs"] = m.stats.acks.Load()
	return out
}
