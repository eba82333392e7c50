package paritycheck

import (
	"fmt"
	"math/rand/v2"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/paritytest"
	"github.com/fuseopt/fuseopt/kernels"
)

// The 16-bit kernels (bfloat16 and binary16): in master-weight mode, with
// a 16-bit gradient and, where the family has one, a float32 gradient; and
// in 16-bit state mode; each with round-to-nearest-even and with
// stochastic rounding.

// mcase is the check of one family's 16-bit kernels with one set of
// hyperparameters.
type mcase struct {
	name   string
	coeffs func(t int64) (kernels.Coeffs, error)
	state  []string // the state streams
	nonneg []bool   // state streams with non-negative values
	g32    bool     // the family has master-weight kernels with a float32 gradient
	// master runs the master-weight kernel: p the float32 master, p16 its
	// 16-bit copy, the gradient g16 or g32 (the other nil), st the float32
	// state.
	master func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, g32 []float32, st [][]float32, r kernels.Rounding) error
	// state16 runs the 16-bit state kernel.
	state16 func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, st [][]uint16, r kernels.Rounding) error
}

func asBF16(x []uint16) []kernels.BF16 {
	return unsafe.Slice((*kernels.BF16)(unsafe.SliceData(x)), len(x))
}

func asF16(x []uint16) []kernels.F16 {
	return unsafe.Slice((*kernels.F16)(unsafe.SliceData(x)), len(x))
}

// at returns st[i], or nil past its end (an optional stream: AMSGrad's
// vmax).
func at[E any](st [][]E, i int) []E {
	if i < len(st) {
		return st[i]
	}
	return nil
}

func mixedCases() []mcase {
	adamMaster := func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, g32 []float32, st [][]float32, r kernels.Rounding) error {
		m, v, vmax := st[0], st[1], at(st, 2)
		switch {
		case g32 != nil && f16:
			return s.AdamMasterG32F16(c, p, asF16(p16), g32, m, v, vmax, r)
		case g32 != nil:
			return s.AdamMasterG32BF16(c, p, asBF16(p16), g32, m, v, vmax, r)
		case f16:
			return s.AdamMasterF16(c, p, asF16(p16), asF16(g16), m, v, vmax, r)
		}
		return s.AdamMasterBF16(c, p, asBF16(p16), asBF16(g16), m, v, vmax, r)
	}
	adam16 := func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, st [][]uint16, r kernels.Rounding) error {
		if f16 {
			return s.Adam16F16(c, asF16(p), asF16(g), asF16(st[0]), asF16(st[1]), asF16(at(st, 2)), r)
		}
		return s.Adam16BF16(c, asBF16(p), asBF16(g), asBF16(st[0]), asBF16(st[1]), asBF16(at(st, 2)), r)
	}
	return []mcase{
		{name: "SGD weight decay", coeffs: fixed(kernels.SGD{LR: 0.01, WeightDecay: 0.01}.Coeffs), g32: true,
			master: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, g32 []float32, _ [][]float32, r kernels.Rounding) error {
				switch {
				case g32 != nil && f16:
					return s.SGDMasterG32F16(c, p, asF16(p16), g32, r)
				case g32 != nil:
					return s.SGDMasterG32BF16(c, p, asBF16(p16), g32, r)
				case f16:
					return s.SGDMasterF16(c, p, asF16(p16), asF16(g16), r)
				}
				return s.SGDMasterBF16(c, p, asBF16(p16), asBF16(g16), r)
			},
			state16: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, _ [][]uint16, r kernels.Rounding) error {
				if f16 {
					return s.SGD16F16(c, asF16(p), asF16(g), r)
				}
				return s.SGD16BF16(c, asBF16(p), asBF16(g), r)
			}},
		{name: "Nesterov, weight decay", state: []string{"momentum_buffer"}, nonneg: []bool{false}, g32: true,
			coeffs: momentumAt(kernels.Momentum{LR: 0.01, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4}, true),
			master: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, g32 []float32, st [][]float32, r kernels.Rounding) error {
				switch {
				case g32 != nil && f16:
					return s.MomentumMasterG32F16(c, p, asF16(p16), g32, st[0], r)
				case g32 != nil:
					return s.MomentumMasterG32BF16(c, p, asBF16(p16), g32, st[0], r)
				case f16:
					return s.MomentumMasterF16(c, p, asF16(p16), asF16(g16), st[0], r)
				}
				return s.MomentumMasterBF16(c, p, asBF16(p16), asBF16(g16), st[0], r)
			},
			state16: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, st [][]uint16, r kernels.Rounding) error {
				if f16 {
					return s.Momentum16F16(c, asF16(p), asF16(g), asF16(st[0]), r)
				}
				return s.Momentum16BF16(c, asBF16(p), asBF16(g), asBF16(st[0]), r)
			}},
		{name: "AdamW", coeffs: kernels.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}.Coeffs,
			state: []string{"m", "v"}, nonneg: []bool{false, true}, g32: true, master: adamMaster, state16: adam16},
		{name: "Adam AMSGrad, maximize", coeffs: kernels.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true,
			Prelude: kernels.Prelude{Maximize: true}}.Coeffs,
			state: []string{"m", "v", "vmax"}, nonneg: []bool{false, true, true}, g32: true, master: adamMaster, state16: adam16},
		{name: "Lion", coeffs: fixed(kernels.Lion{LR: 1e-4, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.01}.Coeffs),
			state: []string{"exp_avg"}, nonneg: []bool{false},
			master: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, _ []float32, st [][]float32, r kernels.Rounding) error {
				if f16 {
					return s.LionMasterF16(c, p, asF16(p16), asF16(g16), st[0], r)
				}
				return s.LionMasterBF16(c, p, asBF16(p16), asBF16(g16), st[0], r)
			},
			state16: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, st [][]uint16, r kernels.Rounding) error {
				if f16 {
					return s.Lion16F16(c, asF16(p), asF16(g), asF16(st[0]), r)
				}
				return s.Lion16BF16(c, asBF16(p), asBF16(g), asBF16(st[0]), r)
			}},
		{name: "Adagrad lr decay, weight decay",
			coeffs: kernels.Adagrad{LR: 1e-2, LRDecay: 0.01, WeightDecay: 0.01, Eps: 1e-10}.Coeffs,
			state:  []string{"sum"}, nonneg: []bool{true},
			master: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, _ []float32, st [][]float32, r kernels.Rounding) error {
				if f16 {
					return s.AdagradMasterF16(c, p, asF16(p16), asF16(g16), st[0], r)
				}
				return s.AdagradMasterBF16(c, p, asBF16(p16), asBF16(g16), st[0], r)
			},
			state16: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, st [][]uint16, r kernels.Rounding) error {
				if f16 {
					return s.Adagrad16F16(c, asF16(p), asF16(g), asF16(st[0]), r)
				}
				return s.Adagrad16BF16(c, asBF16(p), asBF16(g), asBF16(st[0]), r)
			}},
		{name: "RMSprop momentum, weight decay",
			coeffs: fixed(kernels.RMSprop{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, WeightDecay: 0.01, Momentum: 0.9}.Coeffs),
			state:  []string{"square_avg", "momentum_buffer"}, nonneg: []bool{true, false},
			master: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, _ []float32, st [][]float32, r kernels.Rounding) error {
				if f16 {
					return s.RMSpropMasterF16(c, p, asF16(p16), asF16(g16), st[0], st[1], r)
				}
				return s.RMSpropMasterBF16(c, p, asBF16(p16), asBF16(g16), st[0], st[1], r)
			},
			state16: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, st [][]uint16, r kernels.Rounding) error {
				if f16 {
					return s.RMSprop16F16(c, asF16(p), asF16(g), asF16(st[0]), asF16(st[1]), r)
				}
				return s.RMSprop16BF16(c, asBF16(p), asBF16(g), asBF16(st[0]), asBF16(st[1]), r)
			}},
		{name: "Adamax weight decay",
			coeffs: kernels.Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}.Coeffs,
			state:  []string{"exp_avg", "exp_inf"}, nonneg: []bool{false, true},
			master: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, _ []float32, st [][]float32, r kernels.Rounding) error {
				if f16 {
					return s.AdamaxMasterF16(c, p, asF16(p16), asF16(g16), st[0], st[1], r)
				}
				return s.AdamaxMasterBF16(c, p, asBF16(p16), asBF16(g16), st[0], st[1], r)
			},
			state16: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, st [][]uint16, r kernels.Rounding) error {
				if f16 {
					return s.Adamax16F16(c, asF16(p), asF16(g), asF16(st[0]), asF16(st[1]), r)
				}
				return s.Adamax16BF16(c, asBF16(p), asBF16(g), asBF16(st[0]), asBF16(st[1]), r)
			}},
		{name: "NAdam weight decay",
			coeffs: nadamAt(kernels.NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, MomentumDecay: 4e-3}),
			state:  []string{"exp_avg", "exp_avg_sq"}, nonneg: []bool{false, true},
			master: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p []float32, p16, g16 []uint16, _ []float32, st [][]float32, r kernels.Rounding) error {
				if f16 {
					return s.NAdamMasterF16(c, p, asF16(p16), asF16(g16), st[0], st[1], r)
				}
				return s.NAdamMasterBF16(c, p, asBF16(p16), asBF16(g16), st[0], st[1], r)
			},
			state16: func(s *kernels.Set, f16 bool, c *kernels.Coeffs, p, g []uint16, st [][]uint16, r kernels.Rounding) error {
				if f16 {
					return s.NAdam16F16(c, asF16(p), asF16(g), asF16(st[0]), asF16(st[1]), r)
				}
				return s.NAdam16BF16(c, asBF16(p), asBF16(g), asBF16(st[0]), asBF16(st[1]), r)
			}},
	}
}

// mixedIn is the input of one check: float32 streams (the master and its
// state, or a float32 gradient) and 16-bit streams.
type mixedIn struct {
	f []*paritytest.Guarded[float32]
	u []*paritytest.Guarded16
}

func (in *mixedIn) clone() (*mixedIn, [][]float32, [][]uint16) {
	c := &mixedIn{}
	var fs [][]float32
	var us [][]uint16
	c.f, fs = paritytest.CloneAll(in.f)
	for _, g := range in.u {
		c.u = append(c.u, g.Clone())
		us = append(us, c.u[len(c.u)-1].Slice())
	}
	return c, fs, us
}

// to16 rounds x to the 16-bit format, to nearest even.
func to16(f16 bool, x float32) uint16 {
	if f16 {
		return uint16(kernels.F16FromF32(x))
	}
	return uint16(kernels.BF16FromF32(x))
}

// mixedModes are the kernels' modes: master weights with a 16-bit or a
// float32 gradient, and 16-bit state.
var mixedModes = []string{"master", "master, float32 gradient", "16-bit state"}

// mixedInput returns the streams of one check of mode on n values at
// start offset off. Master-weight modes: float32 p, the state, and a float32
// gradient (mode 1); 16-bit p16 and a 16-bit gradient (mode 0). 16-bit
// state: p, g and the state, all 16-bit. The 16-bit values are float32
// values of paritytest.Fill rounded to nearest.
func mixedInput(mc *mcase, f16 bool, mode, n, off int, seed uint64, special bool) *mixedIn {
	r := rand.New(rand.NewPCG(seed, uint64(n*8+off+mode<<20)))
	rate := 0.0
	if special {
		rate = specialRate
	}
	tmp := make([]float32, n)
	f32 := func(nonneg bool) *paritytest.Guarded[float32] {
		g := paritytest.NewGuarded[float32](n, off)
		paritytest.Fill(r, g.Slice(), rate, nonneg)
		return g
	}
	half := func(nonneg bool) *paritytest.Guarded16 {
		g := paritytest.NewGuarded16(n, off)
		paritytest.Fill(r, tmp, rate, nonneg)
		for i, x := range tmp {
			g.Slice()[i] = to16(f16, x)
		}
		return g
	}
	in := &mixedIn{}
	if mode == 2 {
		in.u = append(in.u, half(false), half(false))
		for _, nn := range mc.nonneg {
			in.u = append(in.u, half(nn))
		}
		return in
	}
	in.f = append(in.f, f32(false)) // p
	for _, nn := range mc.nonneg {
		in.f = append(in.f, f32(nn))
	}
	// p16 starts as p rounded; the kernels only write it.
	p16 := paritytest.NewGuarded16(n, off)
	for i, x := range in.f[0].Slice() {
		p16.Slice()[i] = to16(f16, x)
	}
	in.u = append(in.u, p16)
	if mode == 1 {
		in.f = append(in.f, f32(false)) // the float32 gradient, last
	} else {
		in.u = append(in.u, half(false))
	}
	return in
}

// mixedLevel is a level's kernels for parityMixed; fault, where not nil,
// changes the streams after every kernel call (the tests' wrong kernels).
type mixedLevel struct {
	s     *kernels.Set
	fault func(fs [][]float32, us [][]uint16)
}

// mixedSteps runs paritySteps steps of mode on the streams of mixedInput,
// each with its own key of stochastic rounding when sr is set.
func mixedSteps(l mixedLevel, mc *mcase, f16 bool, mode int, sr bool, fs [][]float32, us [][]uint16) error {
	s := l.s
	for t := int64(1); t <= paritySteps; t++ {
		c, err := mc.coeffs(t)
		if err != nil {
			return err
		}
		r := kernels.Rounding{}
		if sr {
			r = kernels.Rounding{Stochastic: true, Key: kernels.SRKey(1, uint64(t), 3), Offset: 5}
		}
		ns := len(mc.state)
		switch mode {
		case 0:
			err = mc.master(s, f16, &c, fs[0], us[0], us[1], nil, fs[1:1+ns], r)
		case 1:
			err = mc.master(s, f16, &c, fs[0], us[0], nil, fs[1+ns], fs[1:1+ns], r)
		default:
			err = mc.state16(s, f16, &c, us[0], us[1], us[2:], r)
		}
		if err != nil {
			return err
		}
		if l.fault != nil {
			l.fault(fs, us)
		}
	}
	return nil
}

// mixedNames names the streams of mixedInput, float32 ones then 16-bit
// ones.
func mixedNames(mc *mcase, mode int) (f, u []string) {
	switch mode {
	case 0:
		return append([]string{"p"}, mc.state...), []string{"p16", "grad"}
	case 1:
		return append(append([]string{"p"}, mc.state...), "grad"), []string{"p16"}
	}
	return nil, append([]string{"p", "grad"}, mc.state...)
}

// parityMixed checks every 16-bit kernel of every level of levs against
// the reference ref, into out.
func parityMixed(ref mixedLevel, levs []mixedLevel, out []Result) error {
	for ci := range mixedCases() {
		for mode := range mixedModes {
			if err := parityMixedCase(ref, levs, out, ci, mode); err != nil {
				return err
			}
		}
	}
	return nil
}

// parityMixedCase checks the kernels of mode of mixedCases()[ci], in
// bfloat16 and binary16, rounded to nearest and stochastically.
func parityMixedCase(ref mixedLevel, levs []mixedLevel, out []Result, ci, mode int) error {
	mc := mixedCases()[ci]
	if mode == 1 && !mc.g32 {
		return nil
	}
	fnames, unames := mixedNames(&mc, mode)
	for _, f16 := range []bool{false, true} {
		format := map[bool]string{false: "bf16", true: "f16"}[f16]
		for _, sr := range []bool{false, true} {
			for _, n := range parityLengths {
				for _, off := range parityOffsets {
					for _, special := range []bool{false, true} {
						what := fmt.Sprintf("%s %s %s sr=%v n=%d off=%d special=%v", mc.name, format, mixedModes[mode], sr, n, off, special)
						in := mixedInput(&mc, f16, mode, n, off, uint64(1000+ci), special)
						want, wf, wu := in.clone()
						if err := mixedSteps(ref, &mc, f16, mode, sr, wf, wu); err != nil {
							return fmt.Errorf("%s, reference: %w", what, err)
						}
						for li, l := range levs {
							got, gf, gu := in.clone()
							if err := mixedSteps(l, &mc, f16, mode, sr, gf, gu); err != nil {
								return fmt.Errorf("%s, %v: %w", what, l.s.Level(), err)
							}
							r := &out[li]
							compareStreams(r, what, fnames, want.f, got.f)
							for k := range want.u {
								r.Elements += int64(n)
								if err := paritytest.CompareHalf(f16, want.u[k], got.u[k]); err != nil {
									r.fail("%s: %s: %v", what, unames[k], err)
								}
							}
						}
					}
				}
			}
		}
	}
	return nil
}
