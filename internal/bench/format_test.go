package bench

import (
	"strings"
	"testing"
)

// The solve table's "% peak" of a contender whose goroutine count has no
// measured peak (gonum runs on GOMAXPROCS goroutines; the peak is measured
// on 1 and -workers) must read "–", not "+Inf%".
func TestSolveTableNoPeakForWorkers(t *testing.T) {
	r := &Report{
		Peak: &Peak{Kernel: "k", Flops: 1e6, Results: []Measure{{Contender: "peak/w=1", Kind: KindPeak, Workers: 1, NsPerOp: 1e4}}},
		Solve: []SolveCase{{N: 64, Flops: SolveFlops(64), Results: []Measure{
			{Contender: "fuseopt/w=1", Kind: KindSolve, Workers: 1, NsPerOp: 1e5},
			{Contender: NameGonumCholesky, Kind: KindGonum, Workers: 4, NsPerOp: 1e6},
		}}},
	}
	var b strings.Builder
	tb := r.SolveTable()
	if err := tb.Write(&b, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Inf") || strings.Contains(b.String(), "NaN") {
		t.Errorf("solve table prints a non-finite figure:\n%s", b.String())
	}
	// A report without a peak (JSON written without fma_peak) as well.
	r.Peak = nil
	b.Reset()
	tb = r.SolveTable()
	if err := tb.Write(&b, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Inf") {
		t.Errorf("solve table without a peak prints a non-finite figure:\n%s", b.String())
	}
}

// The header's sample length reads as a duration for every -time the
// command accepts (up to 1m), never in exponent notation.
func TestFmtDurationNoExponent(t *testing.T) {
	for ns, want := range map[int64]string{
		1500e6: "1.5s", 20e6: "20ms", 12500e3: "12.5ms", 2e9: "2s", 59999e6: "60s", 250e3: "250µs", 999e6: "999ms",
	} {
		if got := fmtDuration(ns); got != want {
			t.Errorf("fmtDuration(%d) = %q, want %q", ns, got, want)
		}
	}
}
