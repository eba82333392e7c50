package optim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestShardClipMaxNormAgree: ranks of a sharded optimizer that pass
// ClipGradNorm different maxNorm values all get ErrInvalid, and no
// gradient is scaled, where each rank scaled its own chunks by its own
// factor (a step no single process takes). One value on every rank (+0
// and -0 are one) clips as a single process does.
func TestShardClipMaxNormAgree(t *testing.T) {
	const ranks = 3
	for _, tc := range []struct {
		name  string
		norms [ranks]float64
		ok    bool
	}{
		{"same", [ranks]float64{0.5, 0.5, 0.5}, true},
		{"zero and negative zero", [ranks]float64{0, math.Copysign(0, -1), 0}, true},
		{"infinite", [ranks]float64{math.Inf(1), math.Inf(1), math.Inf(1)}, true},
		{"last rank differs", [ranks]float64{0.5, 0.5, 0.25}, false},
		{"first rank differs", [ranks]float64{1, 0.5, 0.5}, false},
		{"one zero", [ranks]float64{0.5, 0, 0.5}, false},
		{"one infinite", [ranks]float64{0.5, 0.5, math.Inf(1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestModel[float32](shardSizes)
			m.fillGrads(1)
			ref := mustNew[float32](t, DefaultAdamW(), Options{ChunkSize: 64})
			m.register(t, ref, nil)
			sr := newShardRun(t, m, DefaultAdamW(), nil, nil, Options{ChunkSize: 64}, ranks)
			before := slices.Clone(sr.models[0].grad)
			for i := range before {
				before[i] = slices.Clone(before[i])
			}
			errs := make([]error, ranks)
			norms := make([]float64, ranks)
			onRanks(ranks, func(r int) error {
				norms[r], errs[r] = sr.opts[r].ClipGradNorm(tc.norms[r])
				return nil
			})
			if !tc.ok {
				for r, err := range errs {
					if !errors.Is(err, ErrInvalid) {
						t.Errorf("rank %d: %v, want ErrInvalid", r, err)
					}
				}
				for r, mr := range sr.models {
					for i := range mr.grad {
						if !slices.Equal(mr.grad[i], before[i]) {
							t.Errorf("rank %d: the refused clip changed tensor %d's gradient", r, i)
						}
					}
				}
				return
			}
			want, err := ref.ClipGradNorm(tc.norms[0])
			if err != nil {
				t.Fatal(err)
			}
			for r := range ranks {
				if errs[r] != nil || norms[r] != want {
					t.Fatalf("rank %d: norm %v, %v; single process %v", r, norms[r], errs[r], want)
				}
				// This rank's own chunks as the single process clipped them.
				lo, hi := sr.opts[r].ShardBounds()[r], sr.opts[r].ShardBounds()[r+1]
				flat, refFlat := slices.Concat(sr.models[r].grad...), slices.Concat(m.grad...)
				if !slices.Equal(flat[lo:hi], refFlat[lo:hi]) {
					t.Errorf("rank %d: own chunks clipped otherwise than by the single process", r)
				}
			}
		})
	}
}

// TestShardClipInvalidMaxNorm: a rank given an invalid maxNorm (negative,
// NaN) still takes part in the norm's exchange, so that every rank gets
// ErrInvalid, where the others waited in the exchange for ever; no
// gradient is scaled.
func TestShardClipInvalidMaxNorm(t *testing.T) {
	const ranks = 3
	for _, bad := range []float64{-1, math.NaN(), math.Inf(-1)} {
		for _, all := range []bool{false, true} {
			m := newTestModel[float32](shardSizes)
			m.fillGrads(1)
			sr := newShardRun(t, m, DefaultAdamW(), nil, nil, Options{ChunkSize: 64}, ranks)
			errs := make([]error, ranks)
			done := make(chan struct{})
			go func() {
				defer close(done)
				onRanks(ranks, func(r int) error {
					maxNorm := 0.5
					if all || r == 1 {
						maxNorm = bad
					}
					_, errs[r] = sr.opts[r].ClipGradNorm(maxNorm)
					return nil
				})
			}()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatalf("maxNorm %v on rank 1 (all ranks: %v): the ranks wait for ever", bad, all)
			}
			for r, err := range errs {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("maxNorm %v on rank 1 (all ranks: %v): rank %d: %v, want ErrInvalid", bad, all, r, err)
				}
				for i := range m.grad {
					if !slices.Equal(sr.models[r].grad[i], m.grad[i]) {
						t.Errorf("maxNorm %v: rank %d: tensor %d's gradient scaled", bad, r, i)
					}
				}
			}
		}
	}
}

// TestShardNormCallsDiffer: the ranks of a sharded optimizer compare their
// norm calls in the norm's exchange. A closed rank's GradNorm or
// ClipGradNorm returned ErrClosed before the exchange, and the others
// waited in it for ever; a rank calling GradNorm while the others call
// ClipGradNorm exchanged a buffer of another length (the others' maxNorm
// entries). Now every rank gets an error (ErrClosed on the closed one,
// ErrInvalid on the others) and no gradient is scaled.
func TestShardNormCallsDiffer(t *testing.T) {
	const ranks = 3
	for _, c := range []struct {
		name   string
		closed bool // rank 1 is closed
		call   func(o *Optimizer[float32], r int) error
	}{
		{"closed, ClipGradNorm", true, func(o *Optimizer[float32], _ int) error { _, err := o.ClipGradNorm(0.5); return err }},
		{"closed, GradNorm", true, func(o *Optimizer[float32], _ int) error { _, _, err := o.GradNorm(); return err }},
		{"GradNorm on rank 1, ClipGradNorm on the others", false, func(o *Optimizer[float32], r int) error {
			if r == 1 {
				_, _, err := o.GradNorm()
				return err
			}
			_, err := o.ClipGradNorm(0.5)
			return err
		}},
	} {
		m := newTestModel[float32](shardSizes)
		m.fillGrads(1)
		sr := newShardRun(t, m, DefaultAdamW(), nil, nil, Options{ChunkSize: 64}, ranks)
		if c.closed {
			if err := sr.opts[1].Close(); err != nil {
				t.Fatal(err)
			}
		}
		errs := make([]error, ranks)
		done := make(chan struct{})
		go func() {
			defer close(done)
			onRanks(ranks, func(r int) error {
				errs[r] = c.call(sr.opts[r], r)
				return nil
			})
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("%s: the ranks wait for ever", c.name)
		}
		for r, err := range errs {
			want := ErrInvalid
			if c.closed && r == 1 {
				want = ErrClosed
			}
			if !errors.Is(err, want) {
				t.Errorf("%s: rank %d: %v, want %v", c.name, r, err, want)
			}
			for i := range m.grad {
				if !slices.Equal(sr.models[r].grad[i], m.grad[i]) {
					t.Errorf("%s: rank %d: tensor %d's gradient scaled", c.name, r, i)
				}
			}
		}
	}
	// GradNorm on every rank agrees, as before.
	m := newTestModel[float32](shardSizes)
	m.fillGrads(1)
	sr := newShardRun(t, m, DefaultAdamW(), nil, nil, Options{ChunkSize: 64}, ranks)
	norms := make([]float64, ranks)
	if err := onRanks(ranks, func(r int) error {
		var err error
		norms[r], _, err = sr.opts[r].GradNorm()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if norms[0] != norms[1] || norms[0] != norms[2] || !(norms[0] > 0) {
		t.Errorf("GradNorm on every rank: %v", norms)
	}
}

// TestShardStepClosedRank: a closed rank's Step takes part in the step's
// first exchange, so that the other ranks get ErrInvalid (and, where that
// exchange is the non-finite check, change nothing) instead of waiting
// for it; at the first Step after the run id's exchange. A Step under
// Propagate of a rule that does not reduce exchanges nothing: the others
// step.
func TestShardStepClosedRank(t *testing.T) {
	const ranks = 3
	lamb := DefaultLAMB()
	lamb.WeightDecay = 0.01
	for _, c := range []struct {
		name   string
		h      Hyper
		policy NonFinitePolicy
		before int  // steps of every rank before rank 1 closes
		steps  bool // the open ranks step (no exchange)

	}{
		{name: "AdamW-SkipStep-first", h: DefaultAdamW(), policy: SkipStep},
		{name: "AdamW-ErrorOnNonFinite", h: DefaultAdamW(), policy: ErrorOnNonFinite, before: 2},
		{name: "LAMB-SkipStep", h: lamb, policy: SkipStep, before: 1},
		{name: "LAMB-Propagate-first", h: lamb, policy: Propagate},
		{name: "LAMB-Propagate", h: lamb, policy: Propagate, before: 1},
		{name: "AdamW-Propagate", h: DefaultAdamW(), policy: Propagate, before: 1, steps: true},
	} {
		m := newTestModel[float32](shardSizes)
		m.fillGrads(1)
		sr := newShardRun(t, m, c.h, nil, nil, Options{ChunkSize: 64, NonFinite: c.policy}, ranks)
		for range c.before {
			if err := onRanks(ranks, func(r int) error { _, err := sr.opts[r].Step(); return err }); err != nil {
				t.Fatal(err)
			}
		}
		if err := sr.opts[1].Close(); err != nil {
			t.Fatal(err)
		}
		data := make([][][]float32, ranks)
		for r := range ranks {
			for _, d := range sr.models[r].data {
				data[r] = append(data[r], slices.Clone(d))
			}
		}
		errs := make([]error, ranks)
		done := make(chan struct{})
		go func() {
			defer close(done)
			onRanks(ranks, func(r int) error {
				_, errs[r] = sr.opts[r].Step()
				return nil
			})
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("%s: the open ranks wait for ever", c.name)
		}
		for r, err := range errs {
			var want error = ErrInvalid
			switch {
			case r == 1:
				want = ErrClosed
			case c.steps:
				want = nil
			}
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Errorf("%s: rank %d: %v, want %v", c.name, r, err, want)
			}
			if r != 1 && want != nil && !strings.Contains(fmt.Sprint(err), "Step on rank 0") {
				t.Errorf("%s: rank %d: %v does not name the calls", c.name, r, err)
			}
			moved := false
			for i := range data[r] {
				moved = moved || !slices.Equal(data[r][i], sr.models[r].data[i])
			}
			if wantMoved := c.steps && r != 1; moved != wantMoved {
				t.Errorf("%s: rank %d: parameters moved %v, want %v", c.name, r, moved, wantMoved)
			}
			if step := sr.opts[r].params[0].step; !c.steps && step != int64(c.before) {
				t.Errorf("%s: rank %d: step count %d, want %d", c.name, r, step, c.before)
			}
		}
	}
}
