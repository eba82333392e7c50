package optim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"io"
	"math"

	"github.com/fuseopt/fuseopt/internal/atomicfile"
)

// Muon's state file is the Optimizer's format, version 2 (state.go), with
// kind KindMuon (14) and one group whose values are, in order:
//
//	lr, weight_decay, momentum, nesterov (0 or 1), ns_coefficients.a,
//	ns_coefficients.b, ns_coefficients.c, eps, ns_steps,
//	adjust_lr_fn (0 original, 1 match_rms_adamw, 2 spectral_unclamped)
//
// and per parameter rank 2 (rows, columns), its step count and one buffer,
// momentum_buffer.

var muonValueNames = [...]string{"lr", "weight_decay", "momentum", "nesterov", "ns_coefficients.a",
	"ns_coefficients.b", "ns_coefficients.c", "eps", "ns_steps", "adjust_lr_fn"}

func (c MuonConfig) values() [len(muonValueNames)]float64 {
	b := 0.0
	if c.Nesterov {
		b = 1
	}
	return [...]float64{c.LR, c.WeightDecay, c.Momentum, b, c.NSCoefficients[0], c.NSCoefficients[1],
		c.NSCoefficients[2], c.Eps, float64(c.NSSteps), float64(c.AdjustLR)}
}

// muonFromValues builds the config of saved values; it refuses a flag,
// count or choice that is not a whole number in range.
func muonFromValues(v [len(muonValueNames)]float64) (MuonConfig, error) {
	whole := func(name string, x, hi float64) error {
		if !(x >= 0 && x <= hi && x == math.Trunc(x)) || math.Signbit(x) { // -0 too: Save writes +0
			return fmt.Errorf("%s = %v", name, x)
		}
		return nil
	}
	if err := whole("nesterov", v[3], 1); err != nil {
		return MuonConfig{}, err
	}
	if err := whole("ns_steps", v[8], math.MaxInt32); err != nil {
		return MuonConfig{}, err
	}
	if err := whole("adjust_lr_fn", v[9], 255); err != nil {
		return MuonConfig{}, err
	}
	return MuonConfig{LR: v[0], WeightDecay: v[1], Momentum: v[2], Nesterov: v[3] == 1,
		NSCoefficients: [3]float64{v[4], v[5], v[6]}, Eps: v[7], NSSteps: int(v[8]), AdjustLR: MuonAdjustLR(v[9])}, nil
}

// Save writes the hyperparameters and, per parameter, its name, shape,
// step count and momentum_buffer, in the format of [Optimizer.Save] (kind
// KindMuon), with a checksum.
func (m *Muon[T]) Save(w io.Writer) error {
	if m.names == nil {
		return errZeroMuon // (a closed Muon saves)
	}
	if w == nil {
		return fmt.Errorf("%w: Save to a nil writer", ErrInvalid)
	}
	var z T
	e := encoder{w: bufio.NewWriterSize(w, 1<<16), h: crc64.New(crcTable)}
	e.bytes([]byte(stateMagic))
	e.u32(stateVersion)
	e.u8(uint8(KindMuon))
	e.u8(uint8(sizeOf(z)))
	e.u16(0)
	e.u32(1)
	vals := m.cfg.values()
	e.u8(uint8(len(vals)))
	for i, n := range muonValueNames {
		e.u8(uint8(len(n)))
		e.bytes([]byte(n))
		e.u64(math.Float64bits(vals[i]))
	}
	e.u32(uint32(len(m.params)))
	for i := range m.params {
		p := &m.params[i]
		e.u16(uint16(len(p.name)))
		e.bytes([]byte(p.name))
		e.u32(0)
		e.u8(2)
		e.u64(uint64(p.rows))
		e.u64(uint64(p.cols))
		e.u64(uint64(len(p.data)))
		e.u64(uint64(p.step))
		e.u8(1)
		e.u8(uint8(len(BufMomentumBuffer)))
		e.bytes([]byte(BufMomentumBuffer))
		writeElems(&e, p.buf, len(p.data), 0) // nil before the first step
	}
	return e.close()
}

// SaveFile writes the state to path atomically (see [Optimizer.SaveFile]).
func (m *Muon[T]) SaveFile(path string) error {
	return atomicfile.Write(path, func(w io.Writer) error { return m.Save(w) })
}

// LoadFile loads the state written by SaveFile; see Load. An error opening
// the file is returned as os.Open gives it, with nothing changed.
func (m *Muon[T]) LoadFile(path string) error {
	if err := m.usable(); err != nil { // the zero value or closed: before the file is opened
		return err
	}
	return loadFile(path, m.Load)
}

// Load reads state written by Save, to the end of r, and replaces the
// hyperparameters, step counts and momentum buffers with it. Everything is
// read and checked before anything changes: truncated or corrupted input,
// an unknown version, or values Save never writes (hyperparameters that
// fail Validate or cannot be used in T, which wrap ErrHyper as well, as
// Optimizer.Load's do; a step above MaxStep, a non-zero buffer at step 0)
// give an error wrapping ErrState; the state of another
// kind or element type, or of other parameters (number, names, shapes),
// one wrapping ErrMismatch. An error of r itself is returned wrapped
// (errors.Is matches it), not as ErrState.
func (m *Muon[T]) Load(r io.Reader) error {
	if err := m.usable(); err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("%w: Load from a nil reader", ErrInvalid)
	}
	var z T
	elemSize := int(sizeOf(z))
	d := decoder{r: bufio.NewReaderSize(r, 1<<16), h: crc64.New(crcTable)}
	var head [20]byte
	d.read(head[:])
	if d.err != nil {
		return d.fail()
	}
	if string(head[:8]) == shardMagic {
		// As Optimizer.Load answers a Muon state, once its checksum shows
		// that it is a shard file.
		if err := d.intactToEnd(); err != nil {
			return err
		}
		return fmt.Errorf("%w: an Optimizer's shard file for a Muon optimizer", ErrMismatch)
	}
	if string(head[:8]) != stateMagic {
		return fmt.Errorf("%w: not an optimizer state (bad magic)", ErrState)
	}
	// The Optimizer's versions, which other kinds write (NAdam's 3, those
	// of 16-bit parameters 4 and 5), are another kind's state: a mismatch.
	v := binary.LittleEndian.Uint32(head[8:])
	if v < 1 || v > stateVersionRounding {
		return fmt.Errorf("%w: version %d, Muon reads version %d", ErrState, v, stateVersion)
	}
	kind, elem := Kind(head[12]), int(head[13])
	if (elem != 4 && elem != 8) || head[14] != 0 || head[15] != 0 {
		return fmt.Errorf("%w: bad header", ErrState)
	}
	if kind != KindMuon {
		// Another kind's state, once its checksum shows that it is one
		// (a flipped kind byte is a corrupted file); an unknown kind is
		// no state at all.
		if kinds[kind] == nil {
			return fmt.Errorf("%w: bad header (kind %d)", ErrState, kind)
		}
		if err := d.intactToEnd(); err != nil {
			return err
		}
		return fmt.Errorf("%w: a %v state for a Muon optimizer", ErrMismatch, kind)
	}
	if v != stateVersion {
		return fmt.Errorf("%w: version %d, Muon reads version %d", ErrState, v, stateVersion)
	}
	if elem != elemSize {
		d.mismatch("%d-byte elements for a %d-byte optimizer", elem, elemSize)
	}
	if ng := binary.LittleEndian.Uint32(head[16:]); ng != 1 {
		return fmt.Errorf("%w: %d groups in a Muon state", ErrState, ng)
	}
	var cfg MuonConfig
	if n := int(d.u8()); d.err == nil && n != len(muonValueNames) {
		d.invalid("%d hyperparameters, Muon has %d", n, len(muonValueNames))
	}
	var vals [len(muonValueNames)]float64
	for i, want := range muonValueNames {
		if name := d.str(int(d.u8())); d.err == nil && name != want {
			d.invalid("hyperparameter %d is %q, want %q", i, name, want)
		}
		vals[i] = math.Float64frombits(d.u64())
	}
	if d.err == nil {
		var err error
		cfg, err = muonFromValues(vals)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil && d.err == nil {
			d.err = fmt.Errorf("%w: hyperparameters: %w", ErrState, err) // ErrHyper kept
		}
	}
	np := int64(d.u32())
	if d.err == nil && np != int64(len(m.params)) {
		d.mismatch("%d parameters in the file, %d here", np, len(m.params))
	}
	steps := make([]int64, 0, min(np, int64(len(m.params))))
	bufs := make([][]T, 0, cap(steps))
	scratch := make([]byte, 1<<16)
	for i := int64(0); i < np && d.err == nil; i++ {
		var p *muonParam[T]
		if i < int64(len(m.params)) {
			p = &m.params[i]
		}
		name := d.str(int(d.u16()))
		group := d.u32()
		rank := d.u8()
		if d.err == nil && (group != 0 || rank != 2) {
			d.invalid("parameter %q: group %d, rank %d", name, group, rank)
			break
		}
		rows, cols := int64(d.u64()), int64(d.u64())
		length := int64(d.u64())
		step := int64(d.u64())
		nbuf := d.u8()
		if d.err != nil {
			break
		}
		if rows <= 0 || cols <= 0 || rows > math.MaxInt64/8/cols || rows*cols != length {
			d.invalid("parameter %q: shape %d×%d for %d elements", name, rows, cols, length)
			break
		}
		if step < 0 || step > MaxStep {
			d.invalid("parameter %q: step %d, want 0 to MaxStep = %d", name, step, MaxStep)
			break
		}
		if key := d.str(int(d.u8())); d.err == nil && (nbuf != 1 || key != BufMomentumBuffer) {
			d.invalid("parameter %q: buffers: %d, %q", name, nbuf, key)
			break
		}
		match := false
		switch {
		case p == nil:
		case name != p.name:
			d.mismatch("parameter %d is %q in the file, %q here", i, name, p.name)
		case rows != int64(p.rows) || cols != int64(p.cols):
			d.mismatch("parameter %q is %d×%d in the file, %d×%d here", name, rows, cols, p.rows, p.cols)
		default:
			match = d.why == ""
		}
		if !match {
			d.skip(length * int64(elem))
			continue
		}
		b := make([]T, length)
		readElems(&d, b, scratch)
		if d.err == nil && step == 0 {
			for _, v := range b {
				if v != 0 {
					d.invalid("parameter %q: a non-zero momentum_buffer before the first step", name)
					break
				}
			}
		}
		steps = append(steps, step)
		bufs = append(bufs, b)
	}
	if d.err != nil {
		return d.fail()
	}
	sum := d.h.Sum64()
	d.h = nil
	if got := d.u64(); d.err != nil {
		return d.fail()
	} else if got != sum {
		return fmt.Errorf("%w: checksum mismatch (corrupted)", ErrState)
	}
	if _, err := d.r.Peek(1); err != io.EOF {
		if err != nil {
			return fmt.Errorf("optim: load: %w", err)
		}
		return fmt.Errorf("%w: trailing data after the checksum", ErrState)
	}
	if d.why != "" {
		return fmt.Errorf("%w: %s", ErrMismatch, d.why)
	}
	// Whether the values can be used in T and on these shapes is asked of
	// a state of this element type and these parameters only: another
	// one's is a mismatch, however usable its values are here.
	if err := checkMuonIn[T](cfg, m.params); err != nil {
		return fmt.Errorf("%w: hyperparameters: %w", ErrState, err)
	}
	// Commit: nothing above has touched the optimizer.
	m.cfg = cfg
	for i := range m.params {
		p := &m.params[i]
		p.step = steps[i]
		if p.buf != nil && !m.dirty {
			copy(p.buf, bufs[i]) // in the slab
		} else {
			p.buf = bufs[i]
		}
	}
	return nil
}
