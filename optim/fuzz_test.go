package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load: it must never panic, and it may
// succeed only on an intact state file of this very optimizer (which Save
// then reproduces byte for byte); every failure leaves the optimizer as it
// was.
func FuzzLoad(f *testing.F) {
	_, data := stateFile(f, AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, AMSGrad: true})
	f.Add(data)
	f.Add(data[:40])
	f.Add(reseal(append(bytes.Clone(data[:len(data)-8]), 0, 0, 0, 0, 0, 0, 0, 0)))
	f.Add([]byte{})
	f.Add([]byte(stateMagic))
	_, sgd := stateFile(f, SGDConfig{LR: 0.1, Momentum: 0.9})
	f.Add(sgd)
	_, ema := stateFile(f, DefaultEMA(0.1))
	f.Add(ema)
	if v1, err := os.ReadFile("testdata/state-v1-adam-amsgrad-f32.bin"); err == nil {
		f.Add(v1)
	}
	// Extreme but finite values in the hyperparameters and buffers.
	big := bytes.Clone(data)
	for _, off := range []int{20, 28, 36, 44} {
		binary.LittleEndian.PutUint64(big[off:], math.Float64bits(1e39))
	}
	f.Add(reseal(big))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, _ := stateFile(t, AdamConfig{LR: 0.02, Beta1: 0.8, Beta2: 0.9, AMSGrad: true})
		before := snap(t, o)
		if err := o.Load(bytes.NewReader(in)); err != nil {
			if !snap(t, o).equal(before) {
				t.Fatalf("failed Load (%v) changed the optimizer", err)
			}
			return
		}
		var out bytes.Buffer
		if err := o.Save(&out); err != nil {
			t.Fatal(err)
		}
		if len(in) >= 12 && in[8] == 1 { // version 1: saved as version 2
			o2, _ := stateFile(t, AdamConfig{LR: 0.02, Beta1: 0.8, Beta2: 0.9, AMSGrad: true})
			var again bytes.Buffer
			if err := o2.Load(bytes.NewReader(out.Bytes())); err != nil {
				t.Fatalf("Save of a loaded version-1 file does not load: %v", err)
			}
			if err := o2.Save(&again); err != nil || !bytes.Equal(again.Bytes(), out.Bytes()) {
				t.Fatal("a loaded version-1 state does not round-trip")
			}
		} else if !bytes.Equal(out.Bytes(), in) {
			t.Fatal("Load accepted input that is not an intact state file")
		}
		// What was accepted steps like state a step made: with finite
		// gradients the second moments stay ≥ 0 and below their maximum.
		if _, err := o.Step(); err != nil {
			t.Fatalf("Step after Load: %v", err)
		}
		for _, p := range o.Params() {
			v, _ := o.State(p.Name, BufExpAvgSq)
			vmax, _ := o.State(p.Name, BufMaxExpAvgSq)
			for i := range v {
				if !(v[i] >= 0) || !(vmax[i] >= v[i]) {
					t.Fatalf("%s[%d]: exp_avg_sq %v, max_exp_avg_sq %v after a step", p.Name, i, v[i], vmax[i])
				}
			}
		}
	})
}

// FuzzGradNorm feeds gradients of any finite values, float64 and float32,
// to GradNorm and ClipGradNorm: the norm must be the true norm (or an
// ErrRange error when that exceeds float64), the same for one and two
// workers, and clipping must scale every gradient by maxNorm/norm without
// zeroing one that the factor does not take below the smallest subnormal.
func FuzzGradNorm(f *testing.F) {
	seed := func(vs ...float64) []byte {
		var b []byte
		b = append(b, 0) // maxNorm exponent selector
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		return b
	}
	f.Add(seed(1e200, -1e200, 1))
	f.Add(seed(1e-200, 3e-300, -5e-324))
	f.Add(seed(math.MaxFloat64, -math.MaxFloat64))
	f.Add(seed(3e38, -3e38, 1, 0))
	f.Add(seed(0, 0))
	f.Add(seed(1e154, 1e154, 1e154, 1e-154))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		maxNorm := math.Ldexp(1, int(int8(in[0]))) // 2^-128 … 2^127
		in = in[1:]
		var g64 []float64
		var g32 []float32
		for len(in) >= 8 && len(g64) < 300 {
			v := math.Float64frombits(binary.LittleEndian.Uint64(in))
			in = in[8:]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			g64 = append(g64, v)
			g32 = append(g32, float32(math.Float32frombits(uint32(math.Float64bits(v)))))
		}
		for i, v := range g32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				g32[i] = 1
			}
		}
		fuzzNorm(t, g64, maxNorm)
		fuzzNorm(t, g32, maxNorm)
	})
}

func fuzzNorm[T Float](t *testing.T, src []T, maxNorm float64) {
	want := refNorm([][]T{src}, 1)
	var norms [2]float64
	for w := range norms {
		g := append([]T(nil), src...)
		o := normOpt(t, [][]T{g}, Options{Workers: w + 1, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 16,
			NonFinite: ErrorOnNonFinite})
		norm, finite, err := o.GradNorm()
		if !finite {
			t.Fatal("finite gradients reported as not finite")
		}
		if errors.Is(err, ErrRange) {
			if !math.IsInf(want, 1) {
				t.Fatalf("ErrRange for a norm of %v", want)
			}
			if _, err := o.ClipGradNorm(maxNorm); !errors.Is(err, ErrRange) || !bitsEqual(g, src) {
				t.Fatalf("ClipGradNorm with an out-of-range norm: %v, gradients changed: %v", err, !bitsEqual(g, src))
			}
			return
		}
		if err != nil || !closeTo(norm, want, 1e-12) {
			t.Fatalf("%T workers=%d: GradNorm = %v, %v; want %v", src, w+1, norm, err, want)
		}
		norms[w] = norm
		if _, err := o.ClipGradNorm(maxNorm); err != nil {
			if errors.Is(err, ErrRange) && maxNorm/(norm+1e-6) < 0x1p-252 {
				if !bitsEqual(g, src) {
					t.Fatal("a refused ClipGradNorm changed the gradients")
				}
				continue
			}
			t.Fatalf("ClipGradNorm(%v): %v", maxNorm, err)
		}
		coef := maxNorm / (norm + 1e-6)
		if coef >= 1 {
			if !bitsEqual(g, src) {
				t.Fatal("ClipGradNorm changed gradients whose norm is below maxNorm")
			}
			continue
		}
		tiny := 0x1p-149
		rel := 0x1p-22
		var z T
		if _, ok := any(z).(float64); ok {
			tiny, rel = 0x1p-1074, 0x1p-50
		}
		for i, v := range g {
			// src[i]·maxNorm/(norm+1e-6) rounded once (src[i]·coef would
			// round coef first, to few bits where it is subnormal).
			exp := float64(src[i]) * coef
			if x := float64(src[i]); !math.IsNaN(x) && !math.IsInf(x, 0) && !math.IsInf(norm, 0) && !math.IsNaN(norm) {
				exp = refClipped(x, maxNorm, norm)
			}
			if math.Abs(float64(v)-exp) > rel*math.Abs(exp) && math.Abs(float64(v)-exp) > 2*tiny {
				t.Fatalf("%T: g[%d] = %v after clipping %v by %v, want %v", src, i, v, src[i], coef, exp)
			}
		}
	}
	if math.Float64bits(norms[0]) != math.Float64bits(norms[1]) {
		t.Fatalf("norm %v with one worker, %v with two", norms[0], norms[1])
	}
}
