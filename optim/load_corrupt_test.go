package optim

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// savedState returns an optimizer of rule h over a small model, stepped
// steps times from gradients offset by seed, and its saved state.
func savedState(t *testing.T, h Hyper, steps, seed int, opt Options) (*Optimizer[float32], []byte) {
	t.Helper()
	m := newTestModel[float32]([]int{3, 2})
	m.shapes[0] = []int{3}
	o := mustNew[float32](t, h, opt)
	m.register(t, o, nil)
	for s := range steps {
		m.fillGrads(s + seed)
		mustStep(t, o)
	}
	var b bytes.Buffer
	if err := o.Save(&b); err != nil {
		t.Fatal(err)
	}
	return o, b.Bytes()
}

// savedMuon is savedState for a Muon of one 2×3 matrix.
func savedMuon(t *testing.T, steps, seed int) (*Muon[float32], []byte) {
	t.Helper()
	m, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	d, g := []float32{0, 0.1, 0.2, 0.3, 0.4, 0.5}, make([]float32, 6)
	if err := m.Add("w", d, g, 2, 3); err != nil {
		t.Fatal(err)
	}
	for s := range steps {
		for i := range g {
			g[i] = float32(i*i+s+seed) * 0.1
		}
		if _, err := m.Step(); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	return m, b.Bytes()
}

// TestCorruptNotMismatch: a file with one flipped bit anywhere is
// corrupted, not another optimizer's intact state: no Load answers it with
// ErrMismatch, every one with ErrState, and nothing changes. A flipped kind
// byte made an Adagrad file a Muon one (Optimizer.Load answered before the
// checksum) and a Muon file a LAMB, NAdam or unknown kind's (Muon.Load).
// The intact files of the other type are still ErrMismatch.
func TestCorruptNotMismatch(t *testing.T) {
	type loader struct {
		name string
		data []byte
		load func([]byte) error
		save func() []byte
	}
	var ls []loader
	for _, h := range []Hyper{DefaultAdagrad(), DefaultAdam(), SGDConfig{LR: 0.1, Momentum: 0.9}} {
		_, data := savedState(t, h, 2, 0, Options{Workers: 1})
		o, _ := savedState(t, h, 1, 7, Options{Workers: 1})
		ls = append(ls, loader{h.Kind().String(), data, func(b []byte) error { return o.Load(bytes.NewReader(b)) },
			func() []byte { var b bytes.Buffer; o.Save(&b); return b.Bytes() }})
	}
	_, md := savedMuon(t, 2, 0)
	m, _ := savedMuon(t, 1, 3)
	ls = append(ls, loader{"Muon", md, func(b []byte) error { return m.Load(bytes.NewReader(b)) },
		func() []byte { var b bytes.Buffer; m.Save(&b); return b.Bytes() }})
	for _, l := range ls {
		before, bad := l.save(), 0
		for i := range l.data {
			for bit := range 8 {
				c := bytes.Clone(l.data)
				c[i] ^= 1 << bit
				if err := l.load(c); errors.Is(err, ErrMismatch) || !errors.Is(err, ErrState) {
					if bad++; bad <= 3 {
						t.Errorf("%s: byte %d bit %d flipped: %v, want ErrState and not ErrMismatch", l.name, i, bit, err)
					}
				}
			}
		}
		if !bytes.Equal(l.save(), before) {
			t.Errorf("%s: a refused load changed the state", l.name)
		}
		if bad > 0 {
			t.Errorf("%s: %d one-bit corruptions misreported", l.name, bad)
		}
	}
	// Intact files of the other type: ErrMismatch, both ways; and a
	// shard file for an optimizer that loads none.
	o, _ := savedState(t, DefaultAdagrad(), 1, 0, Options{Workers: 1})
	if err := o.Load(bytes.NewReader(md)); !errors.Is(err, ErrMismatch) {
		t.Errorf("a Muon file for an Adagrad optimizer: %v, want ErrMismatch", err)
	}
	_, ad := savedState(t, DefaultAdagrad(), 1, 0, Options{Workers: 1})
	if err := m.Load(bytes.NewReader(ad)); !errors.Is(err, ErrMismatch) {
		t.Errorf("an Adagrad file for a Muon: %v, want ErrMismatch", err)
	}
	for n := range len(md) {
		if err := o.Load(bytes.NewReader(md[:n])); errors.Is(err, ErrMismatch) || !errors.Is(err, ErrState) {
			t.Fatalf("a Muon file truncated at %d for an Adagrad optimizer: %v, want ErrState", n, err)
		}
	}
}

// onceReader returns data, then err once, then the end of the input: a
// reader whose error is not repeated (as a bufio.Reader's peek reports
// it once).
type onceReader struct {
	data []byte
	err  error
	n    int
}

func (r *onceReader) Read(p []byte) (int, error) {
	r.n++
	switch r.n {
	case 1:
		return copy(p, r.data), nil
	case 2:
		return 0, r.err
	}
	return 0, io.EOF
}

// TestLoadReadErrorOnce: an error of the reader within the first bytes
// (where Load looks for a shard file's magic) comes back as itself, not as
// a truncated file (ErrState).
func TestLoadReadErrorOnce(t *testing.T) {
	disk := errors.New("disk error")
	o, data := savedState(t, DefaultAdam(), 1, 0, Options{Workers: 1})
	for _, n := range []int{0, 4, 7, 8, 30} {
		if err := o.Load(&onceReader{data: data[:n], err: disk}); !errors.Is(err, disk) || errors.Is(err, ErrState) {
			t.Errorf("an error after %d bytes: %v, want the reader's error, not ErrState", n, err)
		}
	}
	m, md := savedMuon(t, 1, 0)
	for _, n := range []int{0, 4, 30} {
		if err := m.Load(&onceReader{data: md[:n], err: disk}); !errors.Is(err, disk) || errors.Is(err, ErrState) {
			t.Errorf("Muon: an error after %d bytes: %v, want the reader's error", n, err)
		}
	}
}
