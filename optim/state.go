package optim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"math"
	"os"
	"slices"

	"github.com/fuseopt/fuseopt/internal/atomicfile"
	"github.com/fuseopt/fuseopt/kernels"
)

// The state file, version 2. All integers and floats are little-endian; a
// string is its length (u16 for names, u8 for keys) then its bytes.
//
//	magic    [8]byte  "FUSEOPTS"
//	version  u32      2
//	kind     u8       Kind (1 SGD, 2 EMA, 3 Adam, 4 AdamW, 5 Lion, 6 Adagrad, 7 RMSprop, 8 Adamax, 9 Adadelta, …)
//	elem     u8       bytes per element: 4 (float32) or 8 (float64)
//	reserved u16      0
//	groups   u32, then per group:
//	    nvals  u8, then per hyperparameter, in its rule's order:
//	           name str8 (PyTorch's: lr, weight_decay, …), value f64
//	           (a bool is 0 or 1)
//	params   u32, then per parameter, in registration order:
//	    name   str16
//	    group  u32
//	    rank   u8, then dims i64 × rank
//	    length i64
//	    step   i64
//	    nbuf   u8, then per buffer: key str8 (its rule's buffer names:
//	           exp_avg, exp_avg_sq, …), length elements (Adafactor's
//	           row_var and col_var: as many as the shape's rows and
//	           columns, over its leading dimensions)
//	crc      u64      CRC-64 (ECMA) of every byte above
//
// Version 3 is version 2 with the per-parameter scalars of a rule that
// keeps them (NAdam's mu_product; see scalarRule), after each parameter's
// step:
//
//	nscal  u8, then per scalar: key str8 (its rule's scalar names:
//	       mu_product), value f64
//
// Save writes it for the kinds whose rule keeps scalars, and only for
// them: the files of every other kind are version 2, byte for byte as
// before, and Load refuses a version 3 file of such a kind and a version 2
// file of a kind with scalars.
//
// Version 4 is version 2, or 3 for a kind with scalars, for an optimizer
// with 16-bit parameters (AddBF16, AddF16): after each parameter's step
// (and scalars),
//
//	type   u8  0 the file's element type, 1 bfloat16, 2 float16
//	mode   u8  0 for type 0; 1 master kept by the optimizer, 2 master
//	           given by the caller, 3 16-bit state
//
// In mode 1 the buffers start with one more, "master": the float32 master
// weights. In mode 3 the buffers hold 2-byte elements of the parameter's
// type.
//
// Version 5 is version 4 with the stochastic rounding of the 16-bit
// parameters: modeStochastic (0x10) in the mode byte of each parameter that
// rounds stochastically (Half.Stochastic), and after that byte
//
//	seed   u64  the Options.Seed of the rounding that wrote its 16-bit
//	            values (of its last step, or of the file it was loaded from)
//
// Save writes version 5 when a parameter is 16-bit (builds that read
// versions up to 4 refuse it); Load reads version 4 files, which do not
// say, for parameters of either rounding.
//
// Version 1, which Load still reads, stored each group as a fixed record
// of seven f64 (lr, momentum, dampening, weight_decay, beta1, beta2, eps;
// for EMA, momentum = dampening = β) and u32 flags (1 nesterov, 2 maximize,
// 4 amsgrad, 8 fast), for kinds 1 to 4 only.
const (
	stateMagic   = "FUSEOPTS"
	stateVersion = 2
	// stateVersionScalars is the version of the kinds with per-parameter
	// scalars.
	stateVersionScalars = 3
	// stateVersionHalf is the first version of an optimizer with 16-bit
	// parameters.
	stateVersionHalf = 4
	// stateVersionRounding is the version that records the rounding of
	// each 16-bit parameter, and the one Save writes for them.
	stateVersionRounding = 5
	// modeStochastic is the bit of a version-5 mode byte that says the
	// parameter rounds stochastically.
	modeStochastic = 0x10
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// The group record of version 1: the value names and the flag names (bit i
// is v1Flags[i]).
var (
	v1Names = [7]string{"lr", "momentum", "dampening", "weight_decay", "beta1", "beta2", "eps"}
	v1Flags = [4]string{"nesterov", "maximize", "amsgrad", "fast"}
)

// v1Record returns the group record a version-1 Save wrote for h: each
// hyperparameter in the slot of its name, "beta" (EMA) in both momentum and
// dampening.
func v1Record(h Hyper) (vals [7]float64, flags uint32) {
	fs, _ := h.named()
	for _, f := range fs {
		if f.name == "beta" {
			vals[1], vals[2] = f.get(), f.get()
		}
		for i, n := range v1Names {
			if n == f.name {
				vals[i] = f.get()
			}
		}
		for i, n := range v1Flags {
			if n == f.name && f.get() == 1 {
				flags |= 1 << i
			}
		}
	}
	return vals, flags
}

// fromV1 builds the config of kind k from a version-1 group record, which
// must be exactly the record v1Record gives for it.
func fromV1(k Kind, vals [7]float64, flags uint32) (Hyper, error) {
	zero := kinds[k]
	if zero == nil || k > KindAdamW {
		return nil, fmt.Errorf("kind %v in a version-1 file", k)
	}
	fs, get := zero.named()
	for _, f := range fs {
		if f.name == "beta" {
			f.set(vals[1])
		}
		for i, n := range v1Names {
			if n == f.name {
				f.set(vals[i])
			}
		}
		for i, n := range v1Flags {
			if n == f.name {
				f.set(float64(flags >> i & 1))
			}
		}
	}
	h := get()
	rv, rf := v1Record(h)
	for i := range rv {
		if math.Float64bits(rv[i]) != math.Float64bits(vals[i]) {
			return nil, fmt.Errorf("%s = %v, which a %v group does not have", v1Names[i], vals[i], k)
		}
	}
	if rf != flags {
		return nil, fmt.Errorf("flags %#x, which a %v group does not have", flags, k)
	}
	return h, nil
}

// Save writes the optimizer's state: kind, element type, group
// hyperparameters, and per parameter its name, shape, step count and state
// buffers, under PyTorch's buffer names, with a checksum. The loss scale and
// the Options are not part of it. A sharded optimizer writes its part of
// the state, as SaveShard does. An SGD parameter whose momentum_buffer
// SetGroup has just turned on (PyTorch's None, which its next step sets to
// the gradient) is written without it, as PyTorch's state_dict has none,
// and Load gives it the same next step.
func (o *Optimizer[T]) Save(w io.Writer) error {
	if o.ops == nil {
		return errZeroOptimizer // (a closed optimizer saves)
	}
	if w == nil {
		return fmt.Errorf("%w: Save to a nil writer", ErrInvalid)
	}
	if o.shard != nil {
		return o.SaveShard(w) // shard_state.go
	}
	return o.save(w, o.hasHalf())
}

// save writes the state, in version 5 (the 16-bit types of every
// parameter) when half is set.
func (o *Optimizer[T]) save(w io.Writer, half bool) error {
	return o.saveVersion(w, half, stateVersionRounding)
}

// saveVersion is save, writing version 4 (without the roundings) or 5
// when half is set.
func (o *Optimizer[T]) saveVersion(w io.Writer, half bool, version uint32) error {
	e := encoder{w: bufio.NewWriterSize(w, 1<<16), h: crc64.New(crcTable)}
	scn := scalarNamesOf(o.groups[0])
	e.bytes([]byte(stateMagic))
	switch {
	case half:
		e.u32(version)
	case len(scn) > 0:
		e.u32(stateVersionScalars)
	default:
		e.u32(stateVersion)
	}
	e.u8(uint8(o.kind))
	e.u8(uint8(o.ops.size))
	e.u16(0)
	e.u32(uint32(len(o.groups)))
	for _, g := range o.groups {
		names, vals := values(g)
		e.u8(uint8(len(names)))
		for i, n := range names {
			e.u8(uint8(len(n)))
			e.bytes([]byte(n))
			e.u64(math.Float64bits(vals[i]))
		}
	}
	e.u32(uint32(len(o.params)))
	for i := range o.params {
		p := &o.params[i]
		writeParamHead(&e, p.name, p.group, p.shape, p.len(), p.step)
		if len(scn) > 0 {
			e.u8(uint8(len(scn)))
			for k, name := range scn {
				e.u8(uint8(len(name)))
				e.bytes([]byte(name))
				e.u64(math.Float64bits(p.sc[k]))
			}
		}
		if half {
			typ, mode := halfCodes(p.half)
			if version < stateVersionRounding {
				mode &^= modeStochastic
			}
			e.u8(typ)
			e.u8(mode)
			if mode&modeStochastic != 0 {
				e.u64(p.half.seed)
			}
		}
		h := o.groups[p.group]
		bufs := savedBuffers(h, p.shape, p.fresh, p.step)
		if p.half != nil && p.half.held {
			e.u8(uint8(len(bufs) + 1))
			e.u8(uint8(len(BufMaster)))
			e.bytes([]byte(BufMaster))
			writeElems(&e, p.data, len(p.data), 0)
		} else {
			e.u8(uint8(len(bufs)))
		}
		for k, name := range bufs {
			e.u8(uint8(len(name)))
			e.bytes([]byte(name))
			if p.half != nil && p.half.state16 {
				writeHalfElems(&e, p.half.buf[k], p.len(), initial16(h, k, p.half.f16)) // nil before the first step
				continue
			}
			writeElems(&e, p.buf[k], bufferLen(h, k, p.shape, p.len()), T(h.initial(k))) // nil before the first step
		}
	}
	return e.close()
}

// SaveFile writes the state to path atomically: to a temporary file in the
// same directory, synced, then renamed over path, and the directory synced.
// A crash leaves either the old file or the new one, never a mix (and, when
// it comes while the temporary file is written, that file, hidden as
// .<name>.tmp<digits>, which nothing removes later).
//
// A file that already exists keeps its permission bits; a new one gets
// 0644 (the umask does not apply). When path is a symbolic link (or a
// chain of them), the file it points to is replaced and the link is kept,
// as a plain write through the link would do; the links are followed as
// the kernel follows them.
func (o *Optimizer[T]) SaveFile(path string) error {
	return atomicfile.Write(path, func(w io.Writer) error { return o.Save(w) })
}

// LoadFile loads the state written by SaveFile; see Load. An error opening
// the file is returned as os.Open gives it (errors.Is matches
// fs.ErrNotExist, fs.ErrPermission), with nothing changed.
func (o *Optimizer[T]) LoadFile(path string) error {
	if err := o.usable(); err != nil { // the zero value, closed, or from the Reducer: before the file is opened
		return err
	}
	return loadFile(path, o.Load)
}

// loadFile opens path and loads it with load; the caller has checked that
// the optimizer is usable, so that the zero value and a closed one get
// their errors whether or not path opens.
func loadFile(path string, load func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return load(f)
}

// Load reads state written by Save, to the end of r, and replaces the
// optimizer's group hyperparameters, step counts and state buffers with it.
// Registered parameter values are not part of the state, but for the
// master weights the optimizer keeps for a 16-bit parameter (Half with no
// Master), which are its weights: Load sets them, and writes the 16-bit
// parameter from them as the parameter's last step wrote it (rounded to
// nearest, or stochastically with the key of that step under the seed the
// file records for it, or this optimizer's Options.Seed for a version-4
// file), so that a run resumes from the file alone; 16-bit values written
// into such a parameter without SyncMaster are replaced, as the next Step
// would replace them, frozen or not. A caller's master (Half.Master) is the
// caller's to save and restore. Load does not change Options.Seed: with
// another seed the steps that follow round differently. Files of float16
// 16-bit state for rules with squared gradients, which earlier builds
// wrote, are refused (ErrState; see AddF16).
//
// Everything is read and checked before anything is changed: on any error
// the optimizer is exactly as before. Input that is truncated, corrupted
// (checksum), of an unknown version, or holds invalid values gives an error
// wrapping ErrState. Invalid values are those Save never writes: group
// hyperparameters that fail the config's Validate or that the kernels of T
// cannot use (see [New]), values of fields the kind's config does not have,
// a step count above MaxStep, a second moment (exp_avg_sq,
// max_exp_avg_sq) that is negative or NaN (a max_exp_avg_sq below
// exp_avg_sq is taken: see checkBuffers), a negative or NaN Adagrad sum, RMSprop or Adadelta square_avg,
// Adadelta acc_delta, Adamax exp_inf or Adafactor row_var, col_var or
// variance, and buffers that do not hold their rule's initial value (zero
// but for Adagrad's sum) at step 0; likewise per-parameter scalars (NAdam's
// mu_product) that no steps produce. What is stored is
// exactly what was checked. intact state of another optimizer kind or element
// type, or whose groups or parameters differ in number, names, groups,
// shapes or sizes gives one wrapping ErrMismatch (which also matches
// ErrState). An error of r itself is returned wrapped (errors.Is matches
// it), not as ErrState: the input was not read, so nothing is known of it.
//
// A shard file (SaveShard) is loaded as LoadShards loads a set of one; an
// optimizer that loads none (a rule that cannot be sharded, 16-bit
// parameters) refuses it with an error wrapping ErrInvalid and ErrState,
// and ErrMismatch too where the file is intact (not where it is
// corrupted). A sharded optimizer loads a whole state file too, keeping
// the state of its spans.
func (o *Optimizer[T]) Load(r io.Reader) error {
	if err := o.usable(); err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("%w: Load from a nil reader", ErrInvalid)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	shard, err := isShardFile(br)
	if err != nil {
		return err
	}
	if shard {
		// An optimizer that loads no shard files (a rule that cannot be
		// sharded, 16-bit parameters) has none of its own: the file is
		// refused with LoadShards' ErrInvalid, and as a state: an intact
		// one is another optimizer's (ErrMismatch), a corrupted or
		// truncated one is corrupted (ErrState, with ErrInvalid and
		// without ErrMismatch).
		err := shardable(o.groups[0])
		if err == nil {
			err = o.noHalfShards()
		}
		if err != nil {
			d := decoder{r: br, h: crc64.New(crcTable)}
			if ierr := d.intactToEnd(); ierr != nil {
				if !errors.Is(ierr, ErrState) {
					return ierr // the reader's
				}
				return fmt.Errorf("%w (a shard file): %w", ierr, err)
			}
			return fmt.Errorf("%w: a shard file: %w", ErrMismatch, err)
		}
		return o.LoadShards(br) // shard_state.go
	}
	d := decoder{r: br, h: crc64.New(crcTable)}
	var head [20]byte
	d.read(head[:])
	if d.err != nil {
		return d.fail()
	}
	if string(head[:8]) != stateMagic {
		return fmt.Errorf("%w: not an optimizer state (bad magic)", ErrState)
	}
	version := binary.LittleEndian.Uint32(head[8:])
	if version < 1 || version > stateVersionRounding {
		return fmt.Errorf("%w: version %d, this build reads versions 1 to %d", ErrState, version, stateVersionRounding)
	}
	kind, elem := Kind(head[12]), int(head[13])
	if kind == KindMuon && version == stateVersion && (elem == 4 || elem == 8) && head[14] == 0 && head[15] == 0 {
		// As Muon.Load answers a state of this type, once its checksum
		// shows that it is one.
		if err := d.intactToEnd(); err != nil {
			return err
		}
		return fmt.Errorf("%w: a %v state for a %v optimizer (Muon.Load reads it)", ErrMismatch, kind, o.kind)
	}
	if kinds[kind] == nil || (version == 1 && kind > KindAdamW) || (elem != 4 && elem != 8) || head[14] != 0 || head[15] != 0 {
		return fmt.Errorf("%w: bad header", ErrState)
	}
	scn := scalarNamesOf(kinds[kind])
	if version == stateVersionScalars && len(scn) == 0 || version == stateVersion && len(scn) > 0 {
		return fmt.Errorf("%w: a version %d file of kind %v", ErrState, version, kind)
	}
	switch {
	case kind != o.kind:
		d.mismatch("a %v state for a %v optimizer", kind, o.kind)
	case elem != o.ops.size:
		d.mismatch("%d-byte elements for a %d-byte optimizer", elem, o.ops.size)
	}

	ng := int64(binary.LittleEndian.Uint32(head[16:]))
	if ng != int64(len(o.groups)) {
		d.mismatch("%d groups in the file, %d here", ng, len(o.groups))
	}
	var groups []Hyper              // the file's groups
	scratchC := new(kernels.Coeffs) // checkIn's block, for every group
	for i := int64(0); i < ng && d.err == nil; i++ {
		var h Hyper
		var err error
		if version == 1 {
			var vals [7]float64
			for j := range vals {
				vals[j] = math.Float64frombits(d.u64())
			}
			flags := d.u32()
			if d.err != nil {
				break
			}
			h, err = fromV1(kind, vals, flags)
		} else {
			n := int(d.u8())
			names, vals := make([]string, n), make([]float64, n)
			for j := range n {
				names[j] = d.str(int(d.u8()))
				vals[j] = math.Float64frombits(d.u64())
			}
			if d.err != nil {
				break
			}
			h, err = fromValues(kind, names, vals)
		}
		// What is stored is exactly what is checked here: the config
		// built from the file's values, validated, and usable by the
		// kernels of T.
		if err == nil {
			err = h.Validate()
		}
		if err == nil && d.why == "" {
			// Whether the values are usable in T is asked of a state of
			// this kind and element type only: another one's is a
			// mismatch, however usable its values are here.
			err = checkIn[T](h, o.invScale(o.lossScale), scratchC)
		}
		if err != nil {
			d.invalidGroup(i, err)
			break
		}
		groups = append(groups, h)
	}

	np := int64(d.u32())
	if d.err == nil && np != int64(len(o.params)) {
		d.mismatch("%d parameters in the file, %d here", np, len(o.params))
	}
	steps := make([]int64, 0, min(np, int64(len(o.params))))
	scs := make([]scalars, 0, cap(steps))
	loaded := make([][3][]T, 0, cap(steps))
	loaded16 := make([][3][]uint16, 0, cap(steps))
	masters := make([][]T, 0, cap(steps))
	freshes := make([]bool, 0, cap(steps)) // saved without its fresh buffers
	seeds := make([]uint64, 0, cap(steps)) // of the 16-bit values
	scratch := make([]byte, 1<<16)
	anyHalf := false // a 16-bit parameter, which version 4 is for
	for i := int64(0); i < np && d.err == nil; i++ {
		var p *param[T]
		if i < int64(len(o.params)) {
			p = &o.params[i]
		}
		name := d.str(int(d.u16()))
		group := int64(d.u32())
		rank := int(d.u8())
		dims := make([]int64, rank)
		for j := range dims {
			dims[j] = int64(d.u64())
		}
		length := int64(d.u64())
		step := int64(d.u64())
		var sc scalars
		if len(scn) > 0 {
			if n := int(d.u8()); d.err == nil && n != len(scn) {
				d.invalid("parameter %q: %d scalars, a %v parameter has %d", name, n, kind, len(scn))
			}
			for k := 0; k < len(scn) && d.err == nil; k++ {
				if key := d.str(int(d.u8())); d.err == nil && key != scn[k] {
					d.invalid("parameter %q: scalar %d is %q, want %q", name, k, key, scn[k])
				}
				sc[k] = math.Float64frombits(d.u64())
			}
		}
		var typ, mode uint8
		sr := false        // stochastic rounding (version 5)
		seed := o.opt.Seed // of its 16-bit values (version 5; roundMaster)
		if version >= stateVersionHalf {
			typ, mode = d.u8(), d.u8()
			anyHalf = anyHalf || typ != 0
			if version >= stateVersionRounding && mode&modeStochastic != 0 && typ != 0 {
				sr, mode = true, mode&^modeStochastic
				seed = d.u64()
			}
		}
		nbuf := int(d.u8())
		if d.err != nil {
			break
		}
		if typ > 2 || (typ == 0) != (mode == 0) || mode > 3 || typ != 0 && elem != 4 {
			d.invalid("parameter %q: type %d, mode %d", name, typ, mode)
			break
		}
		if length < 0 || length > math.MaxInt64/8 || group >= ng || !shapeHolds(dims, length) {
			d.invalid("parameter %d (%q): bad group, shape or length", i, name)
			break
		}
		if step < 0 || step > MaxStep {
			d.invalid("parameter %q: step %d, want 0 to MaxStep = %d", name, step, MaxStep)
			break
		}
		shape := make([]int, rank)
		for j, d := range dims {
			shape[j] = int(d)
		}
		want := paramBuffers(groups[group], shape)
		held := 0
		if mode == 1 {
			held = 1
		}
		isFresh := freshInFile(groups[group], nbuf-held, len(want), step)
		if isFresh {
			want = nil // fresh: its buffers start at their initial values (layout)
		}
		if mode == 1 {
			want = append([]string{BufMaster}, want...) // the held master first
		}
		if nbuf != len(want) {
			d.invalid("parameter %q: %d state buffers, its group has %d", name, nbuf, len(want))
			break
		}
		if typ != 0 {
			// As AddF16/AddBF16 and SetGroup refuse (in 16-bit state
			// mode, mode 3, also an initial value the type cannot hold).
			if err := halfFits(groups[group], mode == 3, typ == 2); err != nil {
				d.invalid("parameter %q: %v", name, err)
				break
			}
		}
		match := false
		switch {
		case p == nil:
		case name != p.name:
			d.mismatch("parameter %d is %q in the file, %q here", i, name, p.name)
		case group != int64(p.group):
			d.mismatch("parameter %q is in group %d in the file, %d here", name, group, p.group)
		case length != int64(p.len()) || !sameShape(dims, p.shape):
			d.mismatch("parameter %q has shape %v in the file, %v here", name, dims, p.shape)
		case !sameHalf(p.half, typ, mode, sr, version >= stateVersionRounding):
			d.mismatch("parameter %q is %s in the file, %s here", name, halfDesc(typ, mode, sr, version >= stateVersionRounding), halfDesc(halfCodes(p.half)))
		default:
			match = d.why == "" // read the data only while everything matches
		}
		var bufs [3][]T
		var bufs16 [3][]uint16
		var master []T
		for k := 0; k < nbuf && d.err == nil; k++ {
			if key := d.str(int(d.u8())); d.err == nil && key != want[k] {
				d.invalid("parameter %q: buffer %d is %q, want %q", name, k, key, want[k])
			}
			if d.err != nil {
				break
			}
			if mode == 1 && k == 0 { // the master
				if match {
					master = make([]T, length)
					readElems(&d, master, scratch)
				} else {
					d.skip(length * int64(elem))
				}
				continue
			}
			kb := k
			if mode == 1 {
				kb-- // the rule's buffer
			}
			bl := int64(bufferLen(groups[group], kb, shape, int(length)))
			switch {
			case match && mode == 3:
				bufs16[kb] = make([]uint16, bl)
				readHalfElems(&d, bufs16[kb], scratch)
			case match:
				bufs[kb] = make([]T, bl)
				readElems(&d, bufs[kb], scratch)
			case mode == 3:
				d.skip(bl * 2)
			default:
				d.skip(bl * int64(elem))
			}
		}
		if mode == 1 {
			want, nbuf = want[1:], nbuf-1
		}
		if match && d.err == nil {
			var err error
			if mode == 3 {
				err = checkHalfBuffers(groups[group], want, bufs16[:nbuf], typ == 2, step)
			} else {
				err = checkBuffers(groups[group], want, bufs[:nbuf], step)
			}
			if err != nil {
				d.invalid("parameter %q: %v", name, err)
				break
			}
			if err := checkScalarsOf(groups[group], sc, step); err != nil {
				d.invalid("parameter %q: %v", name, err)
				break
			}
			scs = append(scs, sc)
			steps = append(steps, step)
			loaded = append(loaded, bufs)
			loaded16 = append(loaded16, bufs16)
			masters = append(masters, master)
			freshes = append(freshes, isFresh)
			seeds = append(seeds, seed)
		}
	}
	if d.err == nil && version >= stateVersionHalf && !anyHalf {
		d.invalid("a version %d file without a 16-bit parameter", version)
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

	prev, prevOK := o.heldSum() // (before the commit: the state held)
	// Commit: nothing above has touched the optimizer.
	if o.shard != nil {
		o.shard.file = 0 // a whole state file carries no run id (shard.go)
	}
	copy(o.groups, groups) // as many as o.groups: they matched
	for i := range o.params {
		o.params[i].step = steps[i]
		o.params[i].sc = scs[i]
		o.params[i].buf = loaded[i]
		o.params[i].bufNames = paramBuffers(groups[o.params[i].group], o.params[i].shape)
		if h := o.params[i].half; h != nil {
			h.buf = loaded16[i]
			h.seed = seeds[i]
			if h.held {
				copy(o.params[i].data, masters[i])
				h.roundMaster(asF32(o.params[i].data), kernels.SRKey(h.seed, uint64(steps[i]), uint64(i)))
			}
		}
		// Set here, not left to layout: layout marks a parameter fresh
		// when it fills a buffer, and a shard's empty span of the
		// parameter has none to fill.
		o.params[i].fresh = freshes[i]
	}
	o.shard.loaded(prev, prevOK, 0, false, false, 0) // (shard.go; nil when not sharded): not a shard file
	// Lay out and plan again: the file's groups may take other kernels
	// (Fast Adam, whose results follow the plan's cut, refuses the fine
	// plan: planFine).
	o.dirty = true
	o.prepare()
	return nil
}

// checkBuffers returns an error when loaded state buffers (names, those
// of h's rule for the parameter's shape, in its order) hold what no
// optimizer step produces: a second moment or sum of squares (exp_avg_sq,
// max_exp_avg_sq, sum, square_avg, acc_delta, row_var, col_var, variance)
// or an infinity norm (exp_inf) that is negative or NaN, or anything but
// the rule's initial value (zero but for Adagrad's sum) before the first
// step. (exp_avg and momentum_buffer can hold any value, NaN included,
// after steps under the Propagate policy.) A max_exp_avg_sq below
// exp_avg_sq is not refused: AMSGrad turned on after steps (SetGroup)
// starts it at zero, and a parameter keeps it so until it steps.
func checkBuffers[T Float](h Hyper, names []string, bufs [][]T, step int64) error {
	for k, b := range bufs {
		if step == 0 {
			init := T(h.initial(k))
			for i, x := range b {
				if x != init || math.Signbit(float64(x)) != math.Signbit(float64(init)) {
					return fmt.Errorf("%s[%d] = %v before the first step, want %v", names[k], i, x, init)
				}
			}
			continue
		}
		switch names[k] {
		case BufSum, BufSquareAvg, BufAccDelta, BufExpInf, BufRowVar, BufColVar, BufVariance:
			for i, x := range b {
				if !(x >= 0) {
					return fmt.Errorf("%s[%d] = %v, want ≥ 0", names[k], i, x)
				}
			}
		case BufExpAvgSq, BufMaxExpAvgSq:
			for i, x := range b {
				if x != x {
					return fmt.Errorf("%s[%d] is NaN: state that a NaN gradient reached (under Propagate) cannot be resumed", names[k], i)
				}
				if !(x >= 0) {
					return fmt.Errorf("%s[%d] = %v, want ≥ 0", names[k], i, x)
				}
			}
		}
	}
	return nil
}

func shapeHolds(dims []int64, length int64) bool {
	prod := int64(1)
	for _, d := range dims {
		if d < 0 {
			return false
		}
		if d != 0 && prod > length/d {
			prod = length + 1
			continue
		}
		prod *= d
	}
	return prod == length
}

func sameShape(dims []int64, shape []int) bool {
	return slices.EqualFunc(dims, shape, func(a int64, b int) bool { return a == int64(b) })
}

type encoder struct {
	w   *bufio.Writer
	h   hash.Hash64 // nil once the checksum is taken
	buf [8]byte
	err error
}

// writeParamHead writes the head of a parameter's record in a state or
// shard file: name, group, shape, number of elements and step count.
func writeParamHead(e *encoder, name string, group int, shape []int, n int, step int64) {
	e.u16(uint16(len(name)))
	e.bytes([]byte(name))
	e.u32(uint32(group))
	e.u8(uint8(len(shape)))
	for _, d := range shape {
		e.u64(uint64(d))
	}
	e.u64(uint64(n))
	e.u64(uint64(step))
}

// close writes the checksum of everything written so far, and flushes.
func (e *encoder) close() error {
	sum := e.h.Sum64()
	e.h = nil
	e.u64(sum)
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	if e.h != nil {
		e.h.Write(b)
	}
	_, e.err = e.w.Write(b)
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.bytes(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.bytes(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.bytes(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.bytes(e.buf[:8])
}

// writeElems writes n elements of x, or n copies of init when x is nil.
func writeElems[T Float](e *encoder, x []T, n int, init T) {
	var scratch [1 << 12]byte
	var z T
	size := int(sizeOf(z))
	per := len(scratch) / size
	for lo := 0; lo < n && e.err == nil; lo += per {
		hi := min(lo+per, n)
		b := scratch[:0]
		for i := lo; i < hi; i++ {
			v := init
			if x != nil {
				v = x[i]
			}
			b = appendElem(b, v)
		}
		e.bytes(b)
	}
}

func sizeOf[T Float](z T) uintptr {
	if _, ok := any(z).(float32); ok {
		return 4
	}
	return 8
}

func appendElem[T Float](b []byte, v T) []byte {
	switch v := any(v).(type) {
	case float32:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	case float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

type decoder struct {
	r   *bufio.Reader
	h   hash.Hash64
	buf [8]byte
	err error  // an I/O error: nothing more is read
	why string // the first reason an intact state does not match (read on to check the sum)
}

func (d *decoder) read(b []byte) {
	if d.err != nil {
		return
	}
	_, d.err = io.ReadFull(d.r, b)
	if d.err == nil && d.h != nil {
		d.h.Write(b)
	}
}

func (d *decoder) u8() uint8 {
	d.read(d.buf[:1])
	return d.buf[0]
}
func (d *decoder) u16() uint16 {
	d.read(d.buf[:2])
	return binary.LittleEndian.Uint16(d.buf[:])
}
func (d *decoder) u32() uint32 {
	d.read(d.buf[:4])
	return binary.LittleEndian.Uint32(d.buf[:])
}
func (d *decoder) u64() uint64 {
	d.read(d.buf[:8])
	return binary.LittleEndian.Uint64(d.buf[:])
}

func (d *decoder) str(n int) string {
	b := make([]byte, n)
	d.read(b)
	return string(b)
}

// intactToEnd reads the rest of the input and checks its trailing
// checksum (the CRC-64 of every byte before it, the part read already
// included), for a file whose body this reader does not parse (another
// kind's state, a shard file): nil where it is intact, so that the caller
// may answer ErrMismatch ("intact, not this optimizer's"), and an error
// wrapping ErrState where it is corrupted or truncated (a flipped kind
// byte is not another kind's state); a read error comes back as itself.
// It holds 64 KiB however long the input.
func (d *decoder) intactToEnd() error {
	if d.err != nil {
		return d.fail()
	}
	buf := make([]byte, 1<<16+8)
	held := 0 // the last bytes read, the checksum once the input ends
	for {
		n, err := d.r.Read(buf[held:])
		held += n
		if held > 8 {
			d.h.Write(buf[:held-8])
			held = copy(buf, buf[held-8:held])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("optim: load: %w", err)
		}
	}
	if held < 8 {
		return fmt.Errorf("%w: truncated", ErrState)
	}
	if binary.LittleEndian.Uint64(buf[:8]) != d.h.Sum64() {
		return fmt.Errorf("%w: checksum mismatch (corrupted)", ErrState)
	}
	return nil
}

// skip reads and hashes n bytes without keeping them.
func (d *decoder) skip(n int64) {
	if d.err != nil {
		return
	}
	_, d.err = io.CopyN(d.h, d.r, n)
}

// mismatch records the first way the state does not fit the optimizer;
// reading goes on, so that a corrupted file is reported as such.
func (d *decoder) mismatch(format string, args ...any) {
	if d.why == "" {
		d.why = fmt.Sprintf(format, args...)
	}
}

// invalid stops reading at a value no writer produces.
func (d *decoder) invalid(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrState, fmt.Sprintf(format, args...))
	}
}

// invalidGroup stops reading at a group the optimizer cannot take, keeping
// err's sentinels (ErrHyper for a hyperparameter Validate or checkIn
// refuses) beside ErrState.
func (d *decoder) invalidGroup(i int64, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: group %d: %w", ErrState, i, err)
	}
}

// fail turns a read error into the error Load returns.
func (d *decoder) fail() error {
	if errors.Is(d.err, ErrState) {
		return d.err
	}
	if errors.Is(d.err, io.EOF) || errors.Is(d.err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated", ErrState)
	}
	return fmt.Errorf("optim: load: %w", d.err)
}

func readElems[T Float](d *decoder, x []T, scratch []byte) {
	var z T
	size := int(sizeOf(z))
	per := len(scratch) / size
	for lo := 0; lo < len(x) && d.err == nil; lo += per {
		hi := min(lo+per, len(x))
		b := scratch[:(hi-lo)*size]
		d.read(b)
		for i := lo; i < hi; i++ {
			x[i] = decodeElem[T](b[(i-lo)*size:])
		}
	}
}

func decodeElem[T Float](b []byte) T {
	var z T
	switch any(z).(type) {
	case float32:
		return T(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	}
	return T(math.Float64frombits(binary.LittleEndian.Uint64(b)))
}
