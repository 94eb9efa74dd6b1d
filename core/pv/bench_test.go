package pv

import (
	"testing"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

// BenchmarkGet reads the pseudo-variables a routing script reads most, on a
// parsed INVITE (names parsed once and cached, as in a running proxy).
func BenchmarkGet(b *testing.B) {
	m, err := sipmsg.Parse([]byte(testInvite))
	if err != nil {
		b.Fatal(err)
	}
	m.Proto, m.SrcIP, m.SrcPort, m.DstIP, m.DstPort = "udp", "10.0.0.1", 5060, "192.168.1.1", 5060
	c := &kemi.Ctx{Msg: m, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
	for _, name := range []string{"$ru", "$rU", "$fU", "$si", "$ci", "$hdr(User-Agent)", "$var(x)"} {
		b.Run(name, func(b *testing.B) {
			if _, err := Get(c, name); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Get(c, name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
