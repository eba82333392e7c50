package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests of state.go: each pins documented behaviour of Save and Load that
// no other test checked.

// stateRec is where the fields of one parameter's record lie in a state
// file of a kind without per-parameter scalars (typ: its type byte, -1
// before version 4; nbuf: its buffer count).
type stateRec struct {
	group, rank, length, step, typ, nbuf int
}

// stateRecs walks a state file of a kind without per-parameter scalars
// whose buffers are as long as their parameters (SGD, Adam, …).
func stateRecs(tb testing.TB, f []byte) []stateRec {
	tb.Helper()
	version, elem := binary.LittleEndian.Uint32(f[8:]), int(f[13])
	off := skipGroups(f, 16)
	np := int(binary.LittleEndian.Uint32(f[off:]))
	off += 4
	var out []stateRec
	for range np {
		off += 2 + int(binary.LittleEndian.Uint16(f[off:])) // the name
		r := stateRec{group: off, rank: off + 4, typ: -1}
		off += 4
		off += 1 + 8*int(f[off])
		r.length, r.step = off, off+8
		length := int(binary.LittleEndian.Uint64(f[off:]))
		off += 16
		mode := byte(0)
		if version >= stateVersionHalf {
			r.typ, mode = off, f[off+1]
			off += 2
			if mode&modeStochastic != 0 {
				off += 8
			}
			mode &^= modeStochastic
		}
		r.nbuf = off
		n := int(f[off])
		off++
		for range n {
			kl := int(f[off])
			size := elem
			if mode == 3 {
				size = 2
			}
			if string(f[off+1:off+1+kl]) == BufMaster {
				size = 4
			}
			off += 1 + kl + length*size
		}
		out = append(out, r)
	}
	if off != len(f)-8 {
		tb.Fatalf("the walk ends at %d, the checksum is at %d", off, len(f)-8)
	}
	return out
}

// edited returns f with b written at off, its checksum recomputed.
func edited(f []byte, off int, b ...byte) []byte {
	out := bytes.Clone(f)
	copy(out[off:], b)
	return resealed(out)
}

// halfStateFile returns an Adam optimizer with a float32 parameter "f", a
// bfloat16 one "h" (its master kept by the optimizer) and a bfloat16 one
// "g" (the caller's master), both rounded stochastically when sr, stepped
// once, and its state (version 5).
func halfStateFile(t *testing.T, sr bool) (*Optimizer[float32], []byte) {
	t.Helper()
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1, Seed: 7})
	if err := o.Add("f", []float32{1, -2, 3}, []float32{0.5, 0.25, -1}); err != nil {
		t.Fatal(err)
	}
	p := []kernels.BF16{kernels.BF16FromF32(1.5), kernels.BF16FromF32(-0.25)}
	g := []kernels.BF16{kernels.BF16FromF32(0.5), kernels.BF16FromF32(-1)}
	if err := o.AddBF16("h", p, g, Half{Stochastic: sr}); err != nil {
		t.Fatal(err)
	}
	p2 := []kernels.BF16{kernels.BF16FromF32(0.75), kernels.BF16FromF32(2)}
	g2 := []kernels.BF16{kernels.BF16FromF32(-0.5), kernels.BF16FromF32(0.125)}
	if err := o.AddBF16("g", p2, g2, Half{Master: []float32{0.75, 2}, Stochastic: sr}); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	var b bytes.Buffer
	if err := o.Save(&b); err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(b.Bytes()[8:]); v != stateVersionRounding {
		t.Fatalf("version %d, want %d", v, stateVersionRounding)
	}
	return o, b.Bytes()
}

// TestLoadVersionZero: a version outside 1 to 5 is unknown, and Load
// refuses it with ErrState (not ErrMismatch), the optimizer unchanged:
// version 0 too, though the rest of the file is a valid version 2.
func TestLoadVersionZero(t *testing.T) {
	o, data := stateFile(t, DefaultAdam())
	for _, v := range []byte{0, 6} {
		d := edited(data, 8, v)
		loadFails(t, o, d, ErrState, "an unknown version")
		if err := o.Load(bytes.NewReader(d)); !invalidFile(err) {
			t.Fatalf("version %d: %v, want ErrState but not ErrMismatch", v, err)
		}
	}
}

// TestLoadElementSize: the element size is 4 (float32) or 8 (float64);
// any other is a header Save never writes (ErrState), not the state of
// another element type (ErrMismatch), though the file (of a rule without
// buffers) reads to its end with any element size.
func TestLoadElementSize(t *testing.T) {
	o, data := stateFile(t, SGDConfig{LR: 0.1})
	for _, e := range []byte{0, 2, 5, 6, 7, 16} {
		d := edited(data, 13, e)
		loadFails(t, o, d, ErrState, "element size")
		if err := o.Load(bytes.NewReader(d)); !invalidFile(err) {
			t.Fatalf("element size %d: %v, want ErrState but not ErrMismatch", e, err)
		}
	}
}

// TestLoadMoreGroups: a state whose groups outnumber the optimizer's is
// refused with ErrMismatch, even when every parameter it holds is in a
// group the optimizer has, and the optimizer is unchanged.
func TestLoadMoreGroups(t *testing.T) {
	src := mustNew[float32](t, SGDConfig{LR: 0.1, Momentum: 0.9}, Options{Workers: 1})
	if _, err := src.AddGroup(SGDConfig{LR: 0.2}); err != nil {
		t.Fatal(err)
	}
	m := newTestModel[float32]([]int{5, 33, 2})
	m.register(t, src, nil)
	m.fillGrads(0)
	mustStep(t, src)
	var b bytes.Buffer
	if err := src.Save(&b); err != nil {
		t.Fatal(err)
	}
	o, _ := stateFile(t, SGDConfig{LR: 0.05, Momentum: 0.5})
	loadFails(t, o, b.Bytes(), ErrMismatch, "2 groups into an optimizer of 1")
}

// TestLoadValidatesGroups: group hyperparameters that fail the config's
// Validate are invalid values (ErrState, not ErrMismatch) whatever
// optimizer loads the file: in the state of another kind too, which would
// otherwise be a mismatch.
func TestLoadValidatesGroups(t *testing.T) {
	_, data := stateFile(t, SGDConfig{LR: 0.1, Momentum: 0.9})
	o, _ := stateFile(t, DefaultAdam())
	for _, c := range []struct {
		name string
		v    float64
	}{{"lr", -1}, {"momentum", -0.5}, {"dampening", math.Inf(1)}, {"weight_decay", math.NaN()}} {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint64(d[valueAt(t, d, c.name):], math.Float64bits(c.v))
		d = resealed(d)
		what := "an SGD state of " + c.name + " " + strconv.FormatFloat(c.v, 'g', -1, 64)
		loadFails(t, o, d, ErrState, what)
		if err := o.Load(bytes.NewReader(d)); !invalidFile(err) {
			t.Fatalf("%s into Adam: %v, want ErrState but not ErrMismatch", what, err)
		}
	}
}

// TestLoadScalarCount: a NAdam parameter has one scalar (mu_product); a
// record that says it has none or two is invalid (ErrState), the
// optimizer unchanged.
func TestLoadScalarCount(t *testing.T) {
	o, data := stateFile(t, DefaultNAdam())
	at := bytes.Index(data, []byte("\x0amu_product")) - 1 // the count
	if at < 0 || data[at] != 1 {
		t.Fatal("no scalar count of 1 before mu_product")
	}
	for _, n := range []byte{0, 2} {
		loadFails(t, o, edited(data, at, n), ErrState, "a scalar count of "+string('0'+rune(n)))
	}
}

// TestLoadRoundingBitVersion4: only version 5 records the rounding (the
// modeStochastic bit and a seed); a version-4 file is version 5 without
// them, so the bytes of a stochastic parameter of version 5 are invalid
// in version 4 (ErrState), the optimizer unchanged.
func TestLoadRoundingBitVersion4(t *testing.T) {
	o, data := halfStateFile(t, true)
	loadFails(t, o, edited(data, 8, stateVersionHalf), ErrState, "version 5 bytes as version 4")
}

// TestLoadHalfCodes: a parameter's type is 0 (the file's element type), 1
// (bfloat16) or 2 (float16), and its mode 0 for type 0 and 1 to 3 for the
// others, with the stochastic bit for a 16-bit type only; any other code is
// one Save never writes (ErrState, not ErrMismatch), and the optimizer is
// unchanged.
func TestLoadHalfCodes(t *testing.T) {
	o, data := halfStateFile(t, false)
	rs := stateRecs(t, data)
	f, h, g := rs[0].typ, rs[1].typ, rs[2].typ
	if got := []byte{data[f], data[f+1], data[h], data[h+1], data[g], data[g+1]}; !bytes.Equal(got, []byte{0, 0, 1, 1, 1, 2}) {
		t.Fatalf("type and mode codes %v, want [0 0 1 1 1 2]", got)
	}
	for _, c := range []struct {
		what    string
		at      int
		typMode []byte
	}{
		{"type 3", h, []byte{3, 1}},
		{"type 255", h, []byte{255, 1}},
		{"bfloat16 of mode 0", h, []byte{1, 0}},
		{"bfloat16 of mode 4", h, []byte{1, 4}},
		{"type 0 of mode 1", f, []byte{0, 1}},
		// Records whose buffer counts are those of the new codes.
		{"bfloat16 of mode 0, 2 buffers", g, []byte{1, 0}},
		{"bfloat16 of mode 4, 2 buffers", g, []byte{1, 4}},
		{"bfloat16 of mode 5, 2 buffers", g, []byte{1, 5}},
		{"type 0 of mode 2", f, []byte{0, 2}},
	} {
		d := edited(data, c.at, c.typMode...)
		loadFails(t, o, d, ErrState, c.what)
		if err := o.Load(bytes.NewReader(d)); !invalidFile(err) {
			t.Fatalf("%s: %v, want ErrState but not ErrMismatch", c.what, err)
		}
	}
	// The stochastic bit, and its seed, on a float32 parameter.
	d := bytes.Clone(data[:f+1])
	d = append(d, modeStochastic, 1, 2, 3, 4, 5, 6, 7, 8)
	d = resealed(append(d, data[f+2:]...))
	loadFails(t, o, d, ErrState, "a float32 parameter rounded stochastically")
	if err := o.Load(bytes.NewReader(d)); !invalidFile(err) {
		t.Fatalf("a float32 parameter rounded stochastically: %v, want ErrState but not ErrMismatch", err)
	}
}

// errWriter fails every write.
type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// TestSaveWriterError: Save returns the writer's error, though the whole
// state fits in its buffer and the writer is first called at the end.
func TestSaveWriterError(t *testing.T) {
	o, _ := stateFile(t, DefaultAdam())
	werr := errors.New("disk full")
	if err := o.Save(errWriter{werr}); !errors.Is(err, werr) {
		t.Fatalf("Save to a failing writer: %v, want its error", err)
	}
}

// errAfter gives its bytes, then err instead of io.EOF.
type errAfter struct {
	r   *bytes.Reader
	err error
}

func (r *errAfter) Read(p []byte) (int, error) {
	if r.r.Len() == 0 {
		return 0, r.err
	}
	return r.r.Read(p)
}

// TestLoadReadError: a reader's error other than EOF is returned (wrapped)
// by Load, whether it comes in the middle of the state or after its
// checksum, where Load reads on to the end; the optimizer is unchanged.
func TestLoadReadError(t *testing.T) {
	o, data := stateFile(t, DefaultAdam())
	rerr := errors.New("connection reset")
	for _, n := range []int{len(data) / 2, len(data)} {
		before := snap(t, o)
		err := o.Load(&errAfter{bytes.NewReader(data[:n]), rerr})
		if !errors.Is(err, rerr) {
			t.Fatalf("a read error after %d of %d bytes: %v, want it", n, len(data), err)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("a read error after %d bytes changed the optimizer", n)
		}
	}
}

// TestLoadHalfInFloat64File: 16-bit parameters need an Optimizer[float32],
// so a state file of 8-byte elements with one is not one Save writes: Load
// refuses it as invalid (ErrState), not as the state of another element
// type (ErrMismatch).
func TestLoadHalfInFloat64File(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1, Momentum: 0.9}, Options{Workers: 1})
	p := []kernels.BF16{kernels.BF16FromF32(1.5), kernels.BF16FromF32(-0.25)}
	g := []kernels.BF16{kernels.BF16FromF32(0.5), kernels.BF16FromF32(-1)}
	if err := o.AddBF16("h", p, g, Half{State16: true}); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	var b bytes.Buffer
	if err := o.Save(&b); err != nil {
		t.Fatal(err)
	}
	d := edited(b.Bytes(), 13, 8)
	loadFails(t, o, d, ErrState, "a bfloat16 parameter in a float64 file")
	if err := o.Load(bytes.NewReader(d)); !invalidFile(err) {
		t.Fatalf("a bfloat16 parameter in a float64 file: %v, want ErrState but not ErrMismatch", err)
	}
}

// TestLoadStepBounds: a step count from 0 to MaxStep loads (MaxStep
// included: only one above it is invalid), and a negative one or one above
// MaxStep is refused with ErrState, the optimizer unchanged.
func TestLoadStepBounds(t *testing.T) {
	o, data := stateFile(t, DefaultAdam())
	at := stateRecs(t, data)[0].step
	withStep := func(s int64) []byte {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint64(d[at:], uint64(s))
		return resealed(d)
	}
	for _, s := range []int64{-1, -1 << 63, MaxStep + 1, 1<<63 - 1} {
		loadFails(t, o, withStep(s), ErrState, "a step count out of range")
	}
	if err := o.Load(bytes.NewReader(withStep(MaxStep))); err != nil {
		t.Fatalf("step MaxStep: %v", err)
	}
	if got := o.Params()[0].Step; got != MaxStep {
		t.Fatalf("step %d after loading MaxStep", got)
	}
}

// TestLoadShapeLength: a parameter's length is the product of its dims,
// and no parameter has more elements than memory can hold; a record whose
// length is not its shape's product, or is beyond memory, is one Save
// never writes: invalid (ErrState), not the state of another model
// (ErrMismatch), the optimizer unchanged.
func TestLoadShapeLength(t *testing.T) {
	o, data := stateFile(t, SGDConfig{LR: 0.1}) // no buffers
	r := stateRecs(t, data)[0]
	if data[r.rank] != 1 {
		t.Fatalf("rank %d, want 1", data[r.rank])
	}
	for _, c := range []struct {
		what      string
		dim, size uint64
	}{
		{"length 6 of shape [5]", 5, 6},
		{"length 5 of shape [6]", 6, 5},
		{"2^62 elements", 1 << 62, 1 << 62},
	} {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint64(d[r.rank+1:], c.dim)
		binary.LittleEndian.PutUint64(d[r.length:], c.size)
		d = resealed(d)
		loadFails(t, o, d, ErrState, c.what)
		if err := o.Load(bytes.NewReader(d)); !invalidFile(err) {
			t.Fatalf("%s: %v, want ErrState but not ErrMismatch", c.what, err)
		}
	}
	// A parameter of shape (1, 5); dims that no product of the same rank
	// gives as its length, or negative.
	o2 := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Workers: 1})
	if err := o2.Add("w", make([]float32, 5), make([]float32, 5), 1, 5); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := o2.Save(&b); err != nil {
		t.Fatal(err)
	}
	data2 := b.Bytes()
	r2 := stateRecs(t, data2)[0]
	if data2[r2.rank] != 2 {
		t.Fatalf("rank %d, want 2", data2[r2.rank])
	}
	for _, c := range []struct {
		what       string
		d0, d1, ln int64
	}{
		{"length 5 of shape [3 5]", 3, 5, 5},
		{"length 5 of shape [5 3]", 5, 3, 5},
		{"length 0 of shape [-1 0]", -1, 0, 0},
		{"length 0 of shape [0 -1]", 0, -1, 0},
	} {
		d := bytes.Clone(data2)
		binary.LittleEndian.PutUint64(d[r2.rank+1:], uint64(c.d0))
		binary.LittleEndian.PutUint64(d[r2.rank+9:], uint64(c.d1))
		binary.LittleEndian.PutUint64(d[r2.length:], uint64(c.ln))
		d = resealed(d)
		loadFails(t, o2, d, ErrState, c.what)
		if err := o2.Load(bytes.NewReader(d)); !invalidFile(err) {
			t.Fatalf("%s: %v, want ErrState but not ErrMismatch", c.what, err)
		}
	}
}

// TestLoadParamGroups: an intact state whose parameters are in other
// groups than the optimizer's (same number of groups, same names and
// shapes) is refused with ErrMismatch, the optimizer unchanged.
func TestLoadParamGroups(t *testing.T) {
	sizes := []int{5, 33, 2}
	setup := func(groups []int) *Optimizer[float32] {
		o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
		if _, err := o.AddGroup(AdamConfig{LR: 0.02, Beta1: 0.8, Beta2: 0.99, Eps: 1e-8}); err != nil {
			t.Fatal(err)
		}
		m := newTestModel[float32](sizes)
		m.register(t, o, groups)
		m.fillGrads(0)
		mustStep(t, o)
		return o
	}
	src := setup([]int{0, 1, 1})
	var b bytes.Buffer
	if err := src.Save(&b); err != nil {
		t.Fatal(err)
	}
	o := setup([]int{0, 0, 1})
	loadFails(t, o, b.Bytes(), ErrMismatch, "parameters in other groups")
}

// TestLoadAdafactorVariance: Adafactor's variance (the second moment of a
// parameter it does not factor) is never negative nor NaN after steps;
// such a value is invalid (ErrState), the optimizer unchanged, while a
// positive one loads.
func TestLoadAdafactorVariance(t *testing.T) {
	o, data := stateFile(t, DefaultAdafactor())
	at := bufferAt(t, data, BufVariance)
	loadFails(t, o, putF32(data, at, -1), ErrState, "variance = -1")
	loadFails(t, o, putF32(data, at+4, float32(math.NaN())), ErrState, "variance = NaN")
	if err := o.Load(bytes.NewReader(putF32(data, at, 0.5))); err != nil {
		t.Fatalf("variance = 0.5: %v", err)
	}
}

// TestLoadFileClosed: a closed optimizer refuses the calls that change it
// with ErrClosed, LoadFile among them, whatever the path names: a state
// file it would load, or nothing.
func TestLoadFileClosed(t *testing.T) {
	o, data := stateFile(t, DefaultAdam())
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := o.LoadFile(path); err != nil {
		t.Fatalf("LoadFile before Close: %v", err)
	}
	o.Close()
	for _, p := range []string{path, filepath.Join(dir, "missing")} {
		if err := o.LoadFile(p); !errors.Is(err, ErrClosed) {
			t.Fatalf("LoadFile(%q) after Close: %v, want ErrClosed", filepath.Base(p), err)
		}
	}
}
