package bench

import (
	"slices"
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

// The tables' figures from known timings, worked out by hand: rates in
// Mparam/s (n·10³/ns), GB/s from the bytes a parameter moves, the speedup
// as the slower time over the faster, the share of the roof as the roof's
// time over the contender's, and "–" where a contender is missing.
func TestTableFigures(t *testing.T) {
	const mi = 1 << 20
	r := &Report{Settings: Settings{Levels: []string{"generic", "avx512"}, Runs: 6}}
	r.Steps = []StepCase{
		{Op: Adam, Prec: F32, N: mi, BytesPerParam: 28, StateBytesPerParam: 8, Results: []Measure{
			{Contender: NameScalar, NsPerOp: 8e6}, {Contender: "generic", NsPerOp: 2e6},
			{Contender: "avx512", NsPerOp: 1e6}, {Contender: NameRoof, NsPerOp: 0.8e6}}},
		{Op: Adam, Prec: F32, N: 1000, BytesPerParam: 28, StateBytesPerParam: 2.5, Results: []Measure{
			{Contender: NameScalar, NsPerOp: 4e4}, {Contender: "avx512", NsPerOp: 1e3}}},
	}
	tabs := r.StepTables()
	if len(tabs) != 1 {
		t.Fatalf("%d step tables", len(tabs))
	}
	same(t, "step head", tabs[0].Head, "n", NameScalar, "generic", "avx512", NameRoof, "avx512 ÷ "+NameScalar, "avx512 % of roof", "roof GB/s", "state B/param")
	// 2²⁰·10³/8e6 = 131.07; /2e6 = 524.3; /1e6 = 1048.6; /0.8e6 = 1310.7;
	// 8e6/1e6 = 8; 0.8e6/1e6 = 80%; 2²⁰·28/0.8e6 = 36.70 GB/s.
	same(t, "step row 1", tabs[0].Rows[0], "1M", "131", "524", "1049", "1311", "8.0×", "80%", "36.7", "8")
	// 1000·10³/4e4 = 25; /1e3 = 1000; 4e4/1e3 = 40.
	same(t, "step row 2", tabs[0].Rows[1], "1000", "25.0", "–", "1000", "–", "40×", "–", "–", "2.5")
	if !strings.Contains(tabs[0].Title, "Adam float32") || !strings.Contains(tabs[0].Title, "28 B/param") {
		t.Errorf("step title %q", tabs[0].Title)
	}
	ct := r.CompactTable()
	same(t, "compact head", ct.Head, "step", NameScalar, "generic", "avx512", NameRoof, "avx512 ÷ "+NameScalar, "avx512 % of roof")
	same(t, "compact row 1", ct.Rows[0], "Adam f32 n=1M", "131", "524", "1049", "1311", "8.0×", "80%")
	same(t, "compact row 2", ct.Rows[1], "Adam f32 n=1000", "25.0", "–", "1000", "–", "40×", "–")
	if !strings.Contains(ct.Title, "median of 6") {
		t.Errorf("compact title %q", ct.Title)
	}

	r.Mixed = []MixedCase{{Op: Adam, N: mi, Level: "avx512",
		Modes: []MixedMode{{ModeF32, 28, 8, "roof/f32"}, {BF16StateSR, 20, 4, "roof/20"}},
		Results: []Measure{{Contender: string(ModeF32), NsPerOp: 1e6}, {Contender: string(BF16StateSR), NsPerOp: 0.5e6},
			{Contender: "roof/f32", NsPerOp: 0.8e6}, {Contender: "roof/20", NsPerOp: 0.4e6}}}}
	mt := r.MixedTable()
	// float32: 1048.6 Mparam/s, ·28 B = 29.36 GB/s, roof 1310.7·28 = 36.70.
	same(t, "mixed row 1", mt.Rows[0], "1M", string(ModeF32), "28", "8", "1049", "29.4", "1.00×", "80%", "36.7")
	// bf16 state: 2097.2 Mparam/s, ·20 B = 41.94 GB/s, 1e6/0.5e6 = 2,
	// 0.4e6/0.5e6 = 80%, roof 2621.4·20 = 52.43.
	same(t, "mixed row 2", mt.Rows[1], "1M", string(BF16StateSR), "20", "4", "2097", "41.9", "2.00×", "80%", "52.4")

	// Two models, their cases interleaved: a table each, in first-seen
	// order; the fastest optim contender is the one listed last.
	a, b := ModelSpec{Layers: 2, Width: 16}, ModelSpec{Layers: 1, Width: 8}
	model := func(s ModelSpec, o Op, scalar float64) ModelCase {
		return ModelCase{Model: s, Op: o, Prec: F32, Tensors: 4, Params: 1000, Results: []Measure{
			{Contender: NameScalar, NsPerOp: scalar}, {Contender: "optim/w=1", NsPerOp: 1.5e4},
			{Contender: "optim/w=2", NsPerOp: 1e4}, {Contender: "roof/w=2", NsPerOp: 5e3}}}
	}
	r.Model = []ModelCase{model(a, Adam, 2e5), model(b, Adam, 1e5), model(a, SGD, 1e5)}
	mts := r.ModelTables()
	if len(mts) != 2 || len(mts[0].Rows) != 2 || len(mts[1].Rows) != 1 {
		t.Fatalf("model tables %+v", mts)
	}
	same(t, "model head", mts[0].Head, "step", NameScalar, "optim/w=1", "optim/w=2", "roof/w=2", "optim/w=2 ÷ "+NameScalar, "optim/w=2 % of roof")
	// 1000·10³/2e5 = 5; /1.5e4 = 66.67; /1e4 = 100; /5e3 = 200; 2e5/1e4 = 20;
	// 5e3/1e4 = 50%.
	same(t, "model row 1", mts[0].Rows[0], "Adam f32", "5.00", "66.7", "100", "200", "20×", "50%")
	same(t, "model row 2", mts[0].Rows[1], "SGD f32", "10.0", "66.7", "100", "200", "10×", "50%")
	// A model too small to pay for waking a worker: roof/w=1 is the faster
	// roof, and the percentage is of it (1e4/2e4 = 50%), not of the slower
	// roof/w=2 (8e4/2e4 = 400%).
	tiny := ModelCase{Model: a, Op: Adam, Prec: F32, Tensors: 4, Params: 1000, Results: []Measure{
		{Contender: NameScalar, NsPerOp: 1e5}, {Contender: "optim/w=2", NsPerOp: 2e4},
		{Contender: "roof/w=1", NsPerOp: 1e4}, {Contender: "roof/w=2", NsPerOp: 8e4}}}
	tt := modelTable(a, []ModelCase{tiny})
	same(t, "tiny model head", tt.Head, "step", NameScalar, "optim/w=2", "roof/w=1", "roof/w=2", "optim/w=2 ÷ "+NameScalar, "optim/w=2 % of roof")
	same(t, "tiny model row", tt.Rows[0], "Adam f32", "10.0", "50.0", "100", "12.5", "5.0×", "50%")
	if !strings.Contains(mts[0].Title, "of the faster roof/w") || !strings.Contains(mts[0].Title, "(2 matrices 16×16 with biases, 0 norms)") {
		t.Errorf("model title %q", mts[0].Title)
	}
	norms := ModelSpec{Norms: 1, Width: 40000}
	nt := modelTable(norms, []ModelCase{{Model: norms, Op: SGD, Prec: F32, Tensors: 2, Params: 80000, Results: tiny.Results}})
	if !strings.Contains(nt.Title, "(1 norms of 40000)") {
		t.Errorf("norms-only model title %q", nt.Title)
	}

	// n = 100: 100³/3 + 2·100² = 353 333 flops. Peak: 10³ flops an
	// operation of each goroutine in 10 ns: 100 GFLOP/s on one, 200 on two.
	r.Solve = []SolveCase{{N: 100, Flops: SolveFlops(100), Results: []Measure{
		{Contender: "fuseopt/w=1", Kind: KindSolve, Workers: 1, NsPerOp: 1e4},
		{Contender: "fuseopt/w=2", Kind: KindSolve, Workers: 2, NsPerOp: 5e3},
		{Contender: NameGonumCholesky, Kind: KindGonum, Workers: 2, NsPerOp: 2e4}}}}
	r.Peak = &Peak{Kernel: "k", Flops: 1e3, Results: []Measure{
		{Contender: "peak/w=1", Kind: KindPeak, Workers: 1, NsPerOp: 10}, {Contender: "peak/w=2", Kind: KindPeak, Workers: 2, NsPerOp: 10}}}
	st := r.SolveTable()
	// 353 333/1e4 = 35.3 GFLOP/s (35% of 100), /5e3 = 70.7 (35% of 200),
	// /2e4 = 17.7 (9% of 200); gonum's time over the best: 4.
	same(t, "solve row", st.Rows[0], "100", "35.3", "70.7", "17.7", "35%", "35%", "9%", "4.0×")
	if got, want := r.PeakLine(), "float64 FMA peak (k): 100 GFLOP/s on 1 goroutine, 200 GFLOP/s on 2 goroutines"; got != want {
		t.Errorf("peak line %q, want %q", got, want)
	}
}

func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}
