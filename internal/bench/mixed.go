package bench

import (
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// Mode is a mixed-precision mode of Adam that the mixed comparison runs
// beside the float32 kernel: master weights (float32 p, m and v, a 16-bit
// gradient, the new p written as float32 and as a 16-bit copy) or 16-bit
// state (p, g, m and v all 16-bit), in bfloat16 or binary16, rounding its
// 16-bit outputs to nearest even or stochastically (the "-sr" modes).
type Mode string

// The modes. ModeF32 is the float32 kernel every mode is compared with; it
// runs in every mixed comparison and is not one of MixedModes.
const (
	ModeF32 Mode = "f32" // Set.AdamF32 (through optim.KernelStep, as the step cases run it)

	BF16Master   Mode = "bf16-master"    // Set.AdamMasterBF16, to nearest
	BF16MasterSR Mode = "bf16-master-sr" // Set.AdamMasterBF16, stochastic rounding
	F16Master    Mode = "f16-master"     // Set.AdamMasterF16, to nearest
	F16MasterSR  Mode = "f16-master-sr"  // Set.AdamMasterF16, stochastic rounding
	BF16State    Mode = "bf16-state"     // Set.Adam16BF16, to nearest
	BF16StateSR  Mode = "bf16-state-sr"  // Set.Adam16BF16, stochastic rounding
	F16State     Mode = "f16-state"      // Set.Adam16F16, to nearest
	F16StateSR   Mode = "f16-state-sr"   // Set.Adam16F16, stochastic rounding
)

// MixedModes is every mixed-precision mode, in the order the reports list
// them.
var MixedModes = []Mode{BF16Master, BF16MasterSR, F16Master, F16MasterSR,
	BF16State, BF16StateSR, F16State, F16StateSR}

// ParseModes parses a comma-separated list of mixed-precision modes ("all"
// for every one, "none" or "" for none), dropping repeats.
func ParseModes(s string) ([]Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all":
		return slices.Clone(MixedModes), nil
	case "none", "":
		return nil, nil
	}
	var out []Mode
	for _, f := range strings.Split(s, ",") {
		m := Mode(strings.ToLower(strings.TrimSpace(f)))
		if !slices.Contains(MixedModes, m) {
			names := make([]string, len(MixedModes))
			for i, m := range MixedModes {
				names[i] = string(m)
			}
			return nil, fmt.Errorf("unknown mixed-precision mode %q (want %s, all or none)", f, strings.Join(names, ","))
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// Master reports whether m keeps float32 master weights and state.
func (m Mode) Master() bool { return strings.Contains(string(m), "-master") }

// State16 reports whether m keeps p, m and v in 16 bits.
func (m Mode) State16() bool { return strings.Contains(string(m), "-state") }

// Stochastic reports whether m rounds its 16-bit outputs stochastically.
func (m Mode) Stochastic() bool { return strings.HasSuffix(string(m), "-sr") }

// BF16 reports whether m's 16-bit type is bfloat16 (else binary16).
func (m Mode) BF16() bool { return strings.HasPrefix(string(m), "bf16-") }

// BytesPerParam is the memory a step of Adam in mode m moves per
// parameter, reads and writes: float32 28 (p, g, m, v read; p, m, v
// written); master weights 28 (the 16-bit g and p, m, v read, 14; p, m, v
// and the 16-bit copy of p written, 14); 16-bit state 14 (p, g, m, v read,
// 8; p, m, v written, 6).
func (m Mode) BytesPerParam() int {
	switch {
	case m.Master():
		return 2 + 3*4 + 3*4 + 2
	case m.State16():
		return 4*2 + 3*2
	}
	return Adam.BytesPerParam(F32)
}

// StateBytesPerParam is what the optimizer keeps per parameter beside the
// model's own weights: m and v (float32 8, 16-bit state 4), and in master
// mode the float32 master copy of p as well (12).
func (m Mode) StateBytesPerParam() int {
	switch {
	case m.Master():
		return 3 * 4
	case m.State16():
		return 2 * 2
	}
	return 2 * 4
}

// roofName is the contender that is m's memory roof: the float32 roof of
// Adam (28 bytes a parameter) for float32 and the master modes, which move
// as many bytes, and NameRoofHalf (14) for the 16-bit state modes.
func (m Mode) roofName() string {
	if m.State16() {
		return NameRoofHalf
	}
	return NameRoof
}

// NameRoofHalf is the roof of the 16-bit state modes: Set.RoofF32 with
// three destinations on four float32 streams of n/2 elements, as many
// bytes (14 a parameter, 8 read and 6 written) in as many streams as
// Adam16BF16 and Adam16F16 move.
const NameRoofHalf = "roof-16bit"

// MixedCase is the mixed comparison at one size: Adam's float32 kernel and
// its mixed-precision modes at one level, and their roofs, timed
// round-robin in one run.
type MixedCase struct {
	Op    Op     `json:"op"`    // Adam
	N     int    `json:"n"`     // parameters
	Level string `json:"level"` // the level of the float32 kernel and of every mode
	// Modes are ModeF32 and then the modes compared, with the bytes each
	// moves and keeps per parameter and the contender that is its roof.
	Modes   []MixedMode `json:"modes"`
	Results []Measure   `json:"results"` // a contender per mode, named by it, then the roofs
}

// MixedMode is one mode of a MixedCase.
type MixedMode struct {
	Mode               Mode   `json:"mode"`
	BytesPerParam      int    `json:"bytes_per_param"`       // memory moved per parameter
	StateBytesPerParam int    `json:"state_bytes_per_param"` // kept beside the weights (Mode.StateBytesPerParam)
	Roof               string `json:"roof"`                  // the contender that is its roof
}

// Get returns the measure of the named contender, or nil.
func (c *MixedCase) Get(name string) *Measure { return get(c.Results, name) }

// MParams returns the parameters per second of m, in millions.
func (c *MixedCase) MParams(m *Measure) float64 { return float64(c.N) * 1e3 / m.NsPerOp }

// numMixedContenders is the number of contenders of a mixed case.
func numMixedContenders(modes []Mode) int {
	n := 1 + len(modes) + 1
	if slices.ContainsFunc(modes, Mode.State16) {
		n++
	}
	return n
}

// halves returns the first n 16-bit elements of the memory of x.
func halves[H kernels.BF16 | kernels.F16](x []float32, n int) []H {
	return unsafe.Slice((*H)(unsafe.Pointer(unsafe.SliceData(x))), 2*len(x))[:n:n]
}

// fillHalf writes the values of x, rounded to nearest, into h.
func fillHalf[H kernels.BF16 | kernels.F16](h []H, x []float32) {
	for i, f := range x {
		switch h := any(h).(type) {
		case []kernels.BF16:
			h[i] = kernels.BF16FromF32(f)
		case []kernels.F16:
			h[i] = kernels.F16FromF32(f)
		}
	}
}

// srStep returns the Rounding of m for its next call: to nearest, or
// stochastic with the key of a new step (SRKey of seed 1, parameter 0) at
// every call, as a training run's steps have.
func srStep(m Mode) func() kernels.Rounding {
	step := uint64(0)
	return func() kernels.Rounding {
		if !m.Stochastic() {
			return kernels.Rounding{}
		}
		step++
		return kernels.Rounding{Stochastic: true, Key: kernels.SRKey(1, step, 0)}
	}
}

// mixedContenders returns the contenders of the mixed comparison of Adam
// on n parameters: the float32 kernel and every mode of modes at level l,
// the float32 roof and, with a 16-bit state mode, NameRoofHalf, at level
// roof.
//
// The float32 kernel and the master modes share p, m and v (a master
// mode's float32 results are the float32 kernel's on the widened gradient):
// one staggered slab holds p, g, m, v and, per 16-bit type of a master
// mode, its gradient and the 16-bit copy of p, each in the first half of a
// float32 stream of n. Each 16-bit type of the state modes has its own slab
// of four streams of n 16-bit values, and NameRoofHalf one of four float32
// streams of n/2 (rounded up). A mode's two roundings share its streams,
// as the levels of a step case do. The 16-bit values are the float32 streams' values
// rounded to nearest (binary16 second moments, below 6.1e-5, are partly
// subnormal).
func mixedContenders(modes []Mode, n int, l, roof kernels.ISA) ([]contender, *mixedStreams, error) {
	c, err := coeffs[float32](Adam)
	if err != nil {
		return nil, nil, err
	}
	s, err := kernels.For(l)
	if err != nil {
		return nil, nil, err
	}
	sr, err := kernels.For(roof)
	if err != nil {
		return nil, nil, err
	}
	var types []bool // the 16-bit types of the master modes: bf16 true
	for _, m := range modes {
		if m.Master() && !slices.Contains(types, m.BF16()) {
			types = append(types, m.BF16())
		}
	}
	a := slab[float32](4+2*len(types), n)
	fillParams(a[0])
	fillGrads(a[1])
	fillMoment(a[2])
	fillSecond(a[3])
	master := map[bool][2][]float32{}
	for i, bf := range types {
		g, p16 := a[4+2*i], a[5+2*i]
		if bf {
			fillHalf(halves[kernels.BF16](g, n), a[1])
		} else {
			fillHalf(halves[kernels.F16](g, n), a[1])
		}
		master[bf] = [2][]float32{g, p16}
	}
	half := (n + 1) / 2
	state := map[bool][][]float32{}
	for _, m := range modes {
		if _, ok := state[m.BF16()]; !m.State16() || ok {
			continue
		}
		h := slab[float32](4, half)
		for i := range h {
			if m.BF16() {
				fillHalf(halves[kernels.BF16](h[i], n), a[i])
			} else {
				fillHalf(halves[kernels.F16](h[i], n), a[i])
			}
		}
		state[m.BF16()] = h
	}

	cs := []contender{{name: string(ModeF32), kind: KindLevel, workers: 1, step: stepOf(s, Adam, &c, a[:4], []int{n})}}
	p, mo, v := a[0], a[2], a[3]
	for _, m := range modes {
		rnd := srStep(m)
		var step func() error
		switch {
		case m.Master() && m.BF16():
			g16, p16 := halves[kernels.BF16](master[true][0], n), halves[kernels.BF16](master[true][1], n)
			step = func() error { return s.AdamMasterBF16(&c, p, p16, g16, mo, v, nil, rnd()) }
		case m.Master():
			g16, p16 := halves[kernels.F16](master[false][0], n), halves[kernels.F16](master[false][1], n)
			step = func() error { return s.AdamMasterF16(&c, p, p16, g16, mo, v, nil, rnd()) }
		case m.BF16():
			h := state[true]
			hp, hg, hm, hv := halves[kernels.BF16](h[0], n), halves[kernels.BF16](h[1], n),
				halves[kernels.BF16](h[2], n), halves[kernels.BF16](h[3], n)
			step = func() error { return s.Adam16BF16(&c, hp, hg, hm, hv, nil, rnd()) }
		default:
			h := state[false]
			hp, hg, hm, hv := halves[kernels.F16](h[0], n), halves[kernels.F16](h[1], n),
				halves[kernels.F16](h[2], n), halves[kernels.F16](h[3], n)
			step = func() error { return s.Adam16F16(&c, hp, hg, hm, hv, nil, rnd()) }
		}
		cs = append(cs, contender{name: string(m), kind: KindLevel, workers: 1, step: step})
	}
	cs = append(cs, contender{name: NameRoof, kind: KindRoof, workers: 1, step: roofOf(Adam, bind[float32](sr), a[:4])})
	if len(state) > 0 {
		h := slab[float32](4, half)
		fillParams(h[0])
		fillGrads(h[1])
		fillMoment(h[2])
		fillSecond(h[3])
		cs = append(cs, contender{name: NameRoofHalf, kind: KindRoof, workers: 1, step: roofOf(Adam, bind[float32](sr), h)})
	}
	return cs, &mixedStreams{f32: a[:4], master: master, state: state}, nil
}

// mixedStreams are the streams of a mixed comparison, for the tests:
// float32 p, g, m, v; per 16-bit type of the master modes (bfloat16: true)
// its gradient and p16 streams; per 16-bit type of the state modes its p,
// g, m, v streams. The 16-bit streams are float32 slices whose memory
// holds them (halves).
type mixedStreams struct {
	f32    [][]float32
	master map[bool][2][]float32
	state  map[bool][][]float32
}

// mixedModes returns ModeF32 and modes with their bytes and roofs.
func mixedModes(modes []Mode) []MixedMode {
	out := make([]MixedMode, 0, 1+len(modes))
	for _, m := range append([]Mode{ModeF32}, modes...) {
		out = append(out, MixedMode{Mode: m, BytesPerParam: m.BytesPerParam(),
			StateBytesPerParam: m.StateBytesPerParam(), Roof: m.roofName()})
	}
	return out
}
