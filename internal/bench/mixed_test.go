package bench

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/kernels"
)

// The bytes of a mode follow from its streams: the 16-bit state modes
// move and keep every stream of float32 Adam at half the width; the master
// modes read a gradient of half the width, write a 16-bit copy of p
// besides, and keep the float32 master copy of p as state.
func TestModeBytes(t *testing.T) {
	f32, st := Adam.BytesPerParam(F32), Adam.StateBytesPerParam(F32, 1000)
	if ModeF32.BytesPerParam() != f32 || float64(ModeF32.StateBytesPerParam()) != st {
		t.Errorf("f32: %d, %d B/param; Adam float32: %d, %v", ModeF32.BytesPerParam(), ModeF32.StateBytesPerParam(), f32, st)
	}
	for _, m := range MixedModes {
		b, s := m.BytesPerParam(), m.StateBytesPerParam()
		switch {
		case m.State16() == m.Master():
			t.Errorf("%s: master %v, 16-bit state %v", m, m.Master(), m.State16())
		case m.Master() && (b != f32-F32.Size()/2+2 || float64(s) != st+float64(F32.Size())):
			t.Errorf("%s: %d, %d B/param", m, b, s)
		case m.State16() && (2*b != f32 || float64(2*s) != st):
			t.Errorf("%s: %d, %d B/param", m, b, s)
		}
		if m.Stochastic() != strings.HasSuffix(string(m), "-sr") || m.BF16() == strings.HasPrefix(string(m), "f16") {
			t.Errorf("%s: stochastic %v, bf16 %v", m, m.Stochastic(), m.BF16())
		}
	}
}

func TestParseModes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Mode
	}{
		{"all", MixedModes},
		{" none ", nil},
		{"", nil},
		{"BF16-master, f16-state-sr,bf16-master", []Mode{BF16Master, F16StateSR}},
	} {
		got, err := ParseModes(tc.in)
		if err != nil || strings.Join(modeStrings(got), ",") != strings.Join(modeStrings(tc.want), ",") {
			t.Errorf("ParseModes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"f32", "bf16", "bf16-master,", "fp16-state", "all,bf16-state"} {
		if m, err := ParseModes(bad); err == nil {
			t.Errorf("ParseModes(%q) = %v, want an error", bad, m)
		}
	}
}

func modeStrings(ms []Mode) []string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return s
}

func TestMixedConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Ops: []Op{SGD}, Mixed: []Mode{BF16Master}},
		{Ops: []Op{Adam}, Mixed: []Mode{"bf16"}},
		{Ops: []Op{Adam}, Mixed: []Mode{ModeF32}},
	} {
		if _, err := Run(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: error %v, want ErrConfig", c, err)
		}
	}
}

// Every contender of the mixed comparison runs its mode on the values the
// float32 kernel runs on: after a few steps, each mode's p, m and v are
// the float32 kernel's within the 16-bit roundings, and a master mode's
// p16 is its p rounded (to nearest: exactly).
func TestMixedContendersAgree(t *testing.T) {
	const n, steps = 1003, 4
	l := kernels.Best()
	cs, ref, err := mixedContenders(nil, n, l, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != numMixedContenders(nil) || cs[0].name != string(ModeF32) || cs[1].name != NameRoof {
		t.Fatalf("contenders %+v", cs)
	}
	for range steps {
		if err := cs[0].step(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range MixedModes {
		cs, st, err := mixedContenders([]Mode{m}, n, l, l)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != numMixedContenders([]Mode{m}) || cs[1].name != string(m) || cs[len(cs)-1].name != m.roofName() {
			t.Fatalf("%s: contenders %+v", m, cs)
		}
		for range steps {
			if err := cs[1].step(); err != nil {
				t.Fatalf("%s: %v", m, err)
			}
		}
		// The relative error of one rounding to 16 bits (twice that for
		// stochastic rounding), a few times over.
		rel := 8 * math.Ldexp(1, -8)
		widen := func(x []float32, i int) float64 {
			if m.BF16() {
				return float64(halves[kernels.BF16](x, n)[i].Float32())
			}
			return float64(halves[kernels.F16](x, n)[i].Float32())
		}
		got := func(s, i int) float64 { return float64(st.f32[s][i]) }
		if m.State16() {
			got = func(s, i int) float64 { return widen(st.state[m.BF16()][s], i) }
		} else if !m.BF16() {
			rel = 8 * math.Ldexp(1, -11)
		}
		// p may move by less than its 16-bit spacing each step (and not at
		// all when rounded to nearest); binary16 second moments lie in
		// part among the subnormals (spacing 2⁻²⁴).
		abs := [4]float64{0: 4 * steps * lrAdam, 2: 1e-6, 3: 1e-7}
		for _, s := range []int{0, 2, 3} {
			for i := range n {
				w, g := float64(ref.f32[s][i]), got(s, i)
				if math.Abs(g-w) > rel*math.Abs(w)+abs[s] || g != g {
					t.Fatalf("%s: stream %d [%d] = %v, float32 kernel %v", m, s, i, g, w)
				}
			}
		}
		if m.Master() {
			p16, off := st.master[m.BF16()][1], 0
			for i := range n {
				p, h := st.f32[0][i], widen(p16, i)
				want := float64(kernels.BF16FromF32(p).Float32())
				if !m.BF16() {
					want = float64(kernels.F16FromF32(p).Float32())
				}
				if (!m.Stochastic() && h != want) || math.Abs(h-float64(p)) > math.Ldexp(math.Abs(float64(p)), -7) {
					t.Fatalf("%s: p16[%d] = %v for p %v", m, i, h, p)
				}
				if h != want {
					off++
				}
			}
			// Stochastic rounding rounds away from the nearest value
			// with a probability of up to a half: some of n do.
			if m.Stochastic() && off == 0 {
				t.Errorf("%s: every p16 is p rounded to nearest", m)
			}
		}
	}
}

// The mixed comparison runs the float32 kernel, every mode and the roofs
// at each size, and its table has a row per size and mode with the mode's
// bytes.
func TestRunMixed(t *testing.T) {
	modes := []Mode{F16MasterSR, BF16State, BF16Master}
	cfg := Config{Ops: []Op{Adam}, Precs: []Prec{F32}, Sizes: []int{33, 1000}, Mixed: modes,
		Sample: 200 * time.Microsecond, Runs: 2}
	var last, total int
	cfg.Progress = func(done, tot int, _ string) { last, total = done, tot }
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if last != total || total == 0 {
		t.Errorf("progress ended at %d of %d", last, total)
	}
	if len(r.Mixed) != 2 || len(r.Settings.Mixed) != len(modes) {
		t.Fatalf("%d mixed cases, settings %v", len(r.Mixed), r.Settings.Mixed)
	}
	for _, c := range r.Mixed {
		if c.Op != Adam || c.Level != r.BestLevel() || len(c.Results) != numMixedContenders(modes) || len(c.Modes) != 1+len(modes) {
			t.Fatalf("case %+v", c)
		}
		for i, md := range c.Modes {
			want := ModeF32
			if i > 0 {
				want = modes[i-1]
			}
			if md.Mode != want || md.BytesPerParam != want.BytesPerParam() || md.StateBytesPerParam != want.StateBytesPerParam() ||
				md.Roof != want.roofName() {
				t.Errorf("n=%d mode %d: %+v", c.N, i, md)
			}
			for _, name := range []string{string(md.Mode), md.Roof} {
				if m := c.Get(name); m == nil || len(m.SamplesNs) != 2 || !(m.NsPerOp > 0) {
					t.Errorf("n=%d %s: %+v", c.N, name, m)
				}
			}
		}
	}
	tb := r.MixedTable()
	if len(tb.Rows) != 2*(1+len(modes)) || !strings.Contains(tb.Title, "Adam mixed precision") {
		t.Fatalf("table %+v", tb)
	}
	for i, row := range tb.Rows {
		md := r.Mixed[i/(1+len(modes))].Modes[i%(1+len(modes))]
		if len(row) != len(tb.Head) || row[1] != string(md.Mode) || row[2] != strconv.Itoa(md.BytesPerParam) ||
			row[3] != strconv.Itoa(md.StateBytesPerParam) || strings.Contains(strings.Join(row, ""), "–") {
			t.Errorf("row %v for %+v", row, md)
		}
		if md.Mode == ModeF32 && row[6] != "1.00×" {
			t.Errorf("float32 row %v", row)
		}
	}
	var b strings.Builder
	if err := r.Write(&b, true); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "| 1000 | bf16-state | 14 | 4 |") || !strings.Contains(out, "| 33 | f16-master-sr | 28 | 12 |") {
		t.Errorf("markdown lacks the mixed rows:\n%s", out)
	}
}
