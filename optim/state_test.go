package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// resumeCases is every optimizer kind, with the options that add state.
var resumeCases = append([]refCase{
	{"SGD/plain", SGDConfig{LR: 0.05}},
	{"Adam/plain", DefaultAdam()},
}, exactCases...)

// TestResume checks that N steps, Save, Load into a fresh optimizer and M
// more steps equal N+M steps straight, bit for bit, for every kind.
func TestResume(t *testing.T) {
	for _, c := range resumeCases {
		t.Run(c.name, func(t *testing.T) {
			t.Run("float32", func(t *testing.T) { checkResume[float32](t, c.h) })
			t.Run("float64", func(t *testing.T) { checkResume[float64](t, c.h) })
		})
	}
}

func checkResume[T Float](t *testing.T, h Hyper) {
	const n, m = 7, 5
	sizes := []int{40, 1000, 3}
	second := h
	switch c := h.(type) { // a second group with other hyperparameters
	case SGDConfig:
		c.LR /= 2
		second = c
	case EMAConfig:
		c.LR /= 2
		second = c
	case AdamConfig:
		c.LR /= 2
		second = c
	case AdamWConfig:
		c.LR /= 2
		second = c
	case LionConfig:
		c.LR /= 2
		second = c
	case RMSpropConfig:
		c.LR /= 2
		second = c
	case AdagradConfig:
		c.LR /= 2
		c.InitialAccumulatorValue = 0.25
		second = c
	case AdamaxConfig:
		c.LR /= 2
		c.Beta1 = 0.5
		second = c
	case LAMBConfig:
		c.LR /= 2
		c.Spago = !c.Spago
		second = c
	case AdadeltaConfig:
		c.LR /= 2
		c.Rho = 0.95
		second = c
	case NAdamConfig: // another momentum schedule: other mu_products
		c.LR /= 2
		c.Beta1, c.MomentumDecay = 0.8, 0.05
		second = c
	case RAdamConfig:
		c.LR /= 2
		second = c
	case AdafactorConfig:
		c.LR /= 2
		c.Eps1Machine, c.Eps1 = false, 1e-6
		second = c
	}
	groups := []int{0, 1, 1}
	setup := func(mod *testModel[T]) *Optimizer[T] {
		o := mustNew[T](t, h, Options{Workers: 2, ChunkSize: 256, ShardThreshold: -1, WakeThreshold: -1})
		if _, err := o.AddGroup(second); err != nil {
			t.Fatal(err)
		}
		// The last tensor is registered after 2 steps: its step count differs.
		for k := range 2 {
			if err := o.AddTo(groups[k], mod.names[k], mod.data[k], mod.grad[k]); err != nil {
				t.Fatal(err)
			}
		}
		return o
	}
	late := func(o *Optimizer[T], mod *testModel[T]) {
		if err := o.AddTo(groups[2], mod.names[2], mod.data[2], mod.grad[2]); err != nil {
			t.Fatal(err)
		}
	}

	// Straight: N+M steps, with an LR change after N.
	straight := newTestModel[T](sizes)
	a := setup(straight)
	for s := range n + m {
		if s == 2 {
			late(a, straight)
		}
		if s == n {
			a.SetLR(1, 0.001)
		}
		straight.fillGrads(s)
		mustStep(t, a)
	}

	// Resumed: N steps, SaveFile, fresh optimizer and model copy, LoadFile, M steps.
	first := newTestModel[T](sizes)
	b := setup(first)
	for s := range n {
		if s == 2 {
			late(b, first)
		}
		first.fillGrads(s)
		mustStep(t, b)
	}
	path := filepath.Join(t.TempDir(), "opt.state")
	if err := b.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	resumed := first.clone()
	c := setup(resumed)
	late(c, resumed)
	c.SetLR(0, 123) // overwritten by the loaded hyperparameters
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if !snap(t, c).equal(snap(t, b)) {
		t.Fatal("loaded optimizer differs from the saved one")
	}
	for s := n; s < n+m; s++ {
		if s == n {
			c.SetLR(1, 0.001)
		}
		resumed.fillGrads(s)
		mustStep(t, c)
	}
	if !snap(t, c).equal(snap(t, a)) {
		t.Fatal("resumed run differs from the straight run")
	}
}

// stateFile returns a small optimizer with a few steps taken and its state.
func stateFile(t testing.TB, h Hyper) (*Optimizer[float32], []byte) {
	m := newTestModel[float32]([]int{5, 33, 2})
	o := mustNew[float32](t, h, Options{Workers: 1})
	m.register(t, o, nil)
	for s := range 3 {
		m.fillGrads(s)
		mustStep(t, o)
	}
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		t.Fatal(err)
	}
	return o, buf.Bytes()
}

// loadFails loads data into o and checks the error and that o is unchanged.
func loadFails(t *testing.T, o *Optimizer[float32], data []byte, want error, what string) {
	t.Helper()
	before := snap(t, o)
	err := o.Load(bytes.NewReader(data))
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
	if !snap(t, o).equal(before) {
		t.Fatalf("%s: a failed Load changed the optimizer", what)
	}
}

func TestLoadTruncatedCorrupted(t *testing.T) {
	h := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, AMSGrad: true}
	_, data := stateFile(t, h)
	// Load into another optimizer with other steps, so that a wrong commit shows.
	o, _ := stateFile(t, AdamConfig{LR: 0.02, Beta1: 0.8, Beta2: 0.9, AMSGrad: true})
	for n := range len(data) {
		loadFails(t, o, data[:n], ErrState, "truncated")
	}
	for i := range data {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= bit
			loadFails(t, o, bad, ErrState, "corrupted")
		}
	}
	loadFails(t, o, append(bytes.Clone(data), 0), ErrState, "trailing byte")
	if err := o.Load(bytes.NewReader(data)); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
}

// reseal recomputes the checksum of a state file edited by a test.
func reseal(data []byte) []byte {
	n := len(data) - 8
	return binary.LittleEndian.AppendUint64(bytes.Clone(data[:n]), crc64.Checksum(data[:n], crc64.MakeTable(crc64.ECMA)))
}

func TestLoadInvalidValues(t *testing.T) {
	o, data := stateFile(t, DefaultAdam())
	edit := func(off int, b ...byte) []byte {
		d := bytes.Clone(data)
		copy(d[off:], b)
		return reseal(d)
	}
	loadFails(t, o, edit(8, 4), ErrState, "version 4")
	loadFails(t, o, edit(8, 3), ErrState, "version 3 for a kind without per-parameter scalars")
	loadFails(t, o, edit(0, 'X'), ErrState, "magic")
	loadFails(t, o, edit(12, 9), ErrState, "kind 9")
	loadFails(t, o, edit(13, 3), ErrState, "element size 3")
	loadFails(t, o, edit(valueAt(t, data, "lr"), 0, 0, 0, 0, 0, 0, 0xf0, 0xbf), ErrState, "lr = -1")
	loadFails(t, o, edit(20, 9), ErrState, "a hyperparameter count of 9")
	if err := o.Load(bytes.NewReader(edit(8, 3))); errors.Is(err, ErrMismatch) {
		t.Error("an invalid file reported as a mismatch")
	}
}

func TestLoadMismatch(t *testing.T) {
	_, adam := stateFile(t, DefaultAdam())
	_, adamw := stateFile(t, DefaultAdamW())
	_, sgd := stateFile(t, SGDConfig{LR: 0.1, Momentum: 0.9})

	o, _ := stateFile(t, DefaultAdam())
	loadFails(t, o, adamw, ErrMismatch, "AdamW state into Adam")
	loadFails(t, o, sgd, ErrMismatch, "SGD state into Adam")

	reg := func(o *Optimizer[float32], names []string, sizes []int) {
		for k, n := range sizes {
			if err := o.Add(names[k], make([]float32, n), make([]float32, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	names := newTestModel[float32]([]int{5, 33, 2}).names
	for _, c := range []struct {
		what  string
		names []string
		sizes []int
	}{
		{"fewer parameters", names[:2], []int{5, 33}},
		{"more parameters", append(names, "extra"), []int{5, 33, 2, 1}},
		{"other names", []string{names[0], "other", names[2]}, []int{5, 33, 2}},
		{"other sizes", names, []int{5, 34, 2}},
	} {
		o := mustNew[float32](t, DefaultAdam(), Options{})
		reg(o, c.names, c.sizes)
		loadFails(t, o, adam, ErrMismatch, c.what)
	}
	// Other shape, same size.
	o = mustNew[float32](t, DefaultAdam(), Options{})
	o.Add(names[0], make([]float32, 5), make([]float32, 5))
	o.Add(names[1], make([]float32, 33), make([]float32, 33), 3, 11)
	o.Add(names[2], make([]float32, 2), make([]float32, 2))
	loadFails(t, o, adam, ErrMismatch, "other shape")
	// Other groups.
	o = mustNew[float32](t, DefaultAdam(), Options{})
	o.AddGroup(DefaultAdam())
	reg(o, names, []int{5, 33, 2})
	loadFails(t, o, adam, ErrMismatch, "other group count")
	// Other element type.
	o64 := mustNew[float64](t, DefaultAdam(), Options{})
	for k, n := range []int{5, 33, 2} {
		o64.Add(names[k], make([]float64, n), make([]float64, n))
	}
	before := snap(t, o64)
	if err := o64.Load(bytes.NewReader(adam)); !errors.Is(err, ErrMismatch) || !errors.Is(err, ErrState) {
		t.Fatalf("float32 state into float64: %v", err)
	}
	if !snap(t, o64).equal(before) {
		t.Fatal("a failed Load changed the optimizer")
	}
	if err := o64.Load(bytes.NewReader(adam)); !strings.Contains(err.Error(), "element") {
		t.Errorf("message %q does not say why", err)
	}
}

// TestLoadChangesBuffers loads state whose hyperparameters need other
// buffers (AMSGrad on) than the optimizer had.
func TestLoadChangesBuffers(t *testing.T) {
	ams := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, AMSGrad: true}
	src, data := stateFile(t, ams)
	o, _ := stateFile(t, DefaultAdam())
	if err := o.Load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := snap(t, o).state; !bytes.Equal(got, data) {
		t.Fatal("loaded state differs")
	}
	want, _ := src.State(src.params[1].name, BufMaxExpAvgSq)
	got, err := o.State(o.params[1].name, BufMaxExpAvgSq)
	if err != nil || !bitsEqual(got, want) {
		t.Fatalf("max_exp_avg_sq not loaded: %v", err)
	}
}

// TestLoadReplans: a state whose groups take Fast Adam, loaded into an
// optimizer that had planned a finer cut of its tasks (which Fast Adam's
// results would depend on), steps as the same file loaded with one worker,
// whole and sharded (LoadShards).
func TestLoadReplans(t *testing.T) {
	const n = 4 * 16048 // (pieces whose ends are not multiples of the kernel's blocks)
	fast := DefaultAdam()
	fast.Fast = true
	g := make([]float32, n)
	for i := range g {
		g[i] = float32(i%13)/8 - 0.7
	}
	// The file: one Fast Adam step.
	src := mustNew[float32](t, fast, Options{Workers: 1, ChunkSize: 16048})
	p0 := make([]float32, n)
	for i := range p0 {
		p0[i] = float32(i%7) / 4
	}
	sp := slices.Clone(p0)
	src.Add("w", sp, slices.Clone(g))
	mustStep(t, src)
	var file, shard bytes.Buffer
	if err := src.Save(&file); err != nil {
		t.Fatal(err)
	}
	if err := src.SaveShard(&shard); err != nil {
		t.Fatal(err)
	}
	after := func(workers int, load func(*Optimizer[float32]) error) []float32 {
		o := mustNew[float32](t, DefaultAdam(), Options{Workers: workers, ChunkSize: 16048, ShardThreshold: -1, WakeThreshold: -1})
		p := slices.Clone(p0)
		grad := make([]float32, n)
		o.Add("w", p, grad)
		o.ZeroGrad() // plans: with 3 workers, a finer cut of the 4 tasks
		if err := load(o); err != nil {
			t.Fatal(err)
		}
		copy(p, sp)
		for i := range grad {
			grad[i] = float32(i%11)/8 - 0.6
		}
		mustStep(t, o)
		return p
	}
	whole := func(o *Optimizer[float32]) error { return o.Load(bytes.NewReader(file.Bytes())) }
	shards := func(o *Optimizer[float32]) error { return o.LoadShards(bytes.NewReader(shard.Bytes())) }
	want := after(1, whole)
	for _, c := range []struct {
		name string
		load func(*Optimizer[float32]) error
	}{{"Load", whole}, {"LoadShards", shards}} {
		if got := after(3, c.load); !bitsEqual(got, want) {
			t.Errorf("%s into 3 workers: the step differs from one worker's", c.name)
		}
	}
}

func TestSaveFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, data := stateFile(t, DefaultAdamW())
	if err := o.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes, want the %d of Save (%v)", len(got), len(data), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want 1 (a temporary file was left)", len(entries))
	}
	// A failing save leaves the old file and no temporary.
	if err := o.SaveFile(filepath.Join(dir, "missing", "ckpt")); err == nil {
		t.Fatal("SaveFile into a missing directory succeeded")
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after a failed save", len(entries))
	}
	if err := o.LoadFile(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
}

// TestLoadVersion1: the state files of format version 1 in testdata load:
// the groups become the configs they were written from, and Save then
// writes the parameters' step counts and buffers byte for byte as the old
// file holds them (only the group records differ between the versions).
// The files were written from the model of stateFile after three steps,
// float32 and float64.
func TestLoadVersion1(t *testing.T) {
	cases := map[string]Hyper{
		"sgd-momentum": SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01, Maximize: true},
		"sgd-nesterov": SGDConfig{LR: 0.05, Momentum: 0.8, Nesterov: true},
		"sgd":          SGDConfig{LR: 0.1, WeightDecay: 0.001},
		"ema":          EMAConfig{LR: 0.1, Beta: 0.8, WeightDecay: 0.02},
		"adam-amsgrad": AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, AMSGrad: true},
		"adamw":        AdamWConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.95, Eps: 1e-6, WeightDecay: 0.1, Fast: true},
	}
	for name, h := range cases {
		checkV1[float32](t, name+"-f32", h)
		checkV1[float64](t, name+"-f64", h)
	}
}

func checkV1[T Float](t *testing.T, name string, h Hyper) {
	old := v1File(t, name)
	m := newTestModel[T]([]int{5, 33, 2})
	o := mustNew[T](t, otherLR(h), Options{Workers: 1})
	m.register(t, o, nil)
	if err := o.Load(bytes.NewReader(old)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if g, _ := o.Group(0); g != h {
		t.Errorf("%s: group %+v, want %+v", name, g, h)
	}
	var got bytes.Buffer
	if err := o.Save(&got); err != nil {
		t.Fatal(err)
	}
	// The parameters: after one group record of each version, up to the
	// checksum.
	names, _ := values(h)
	rec2 := 1
	for _, n := range names {
		rec2 += 1 + len(n) + 8
	}
	g, w := got.Bytes(), old
	if !bytes.Equal(g[20+rec2:len(g)-8], w[20+60:len(w)-8]) {
		t.Errorf("%s: the parameters' state is not what the version-1 file holds", name)
	}
}

// otherLR returns a valid config of h's kind that differs from h, so
// that a Load that keeps the old hyperparameters shows.
func otherLR(h Hyper) Hyper {
	return h.withLR(lrOf(h) * 3)
}

// TestLoadVersion2: the state files of format version 2 in testdata
// (written before version 3 existed, from the model of stateFile) load,
// and Save writes them again byte for byte: kinds without per-parameter
// scalars still save version 2.
func TestLoadVersion2(t *testing.T) {
	cases := map[string]Hyper{
		"adam-amsgrad":              AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, AMSGrad: true},
		"rmsprop-centered-momentum": RMSpropConfig{LR: 0.01, Alpha: 0.9, Eps: 1e-8, WeightDecay: 0.01, Momentum: 0.9, Centered: true, Maximize: true},
		"adagrad":                   AdagradConfig{LR: 0.05, LRDecay: 0.01, WeightDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-10},
		"lion":                      LionConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1},
	}
	for name, h := range cases {
		old, err := os.ReadFile(filepath.Join("testdata", "state-v2-"+name+"-f32.bin"))
		if err != nil {
			t.Fatal(err)
		}
		m := newTestModel[float32]([]int{5, 33, 2})
		o := mustNew[float32](t, otherLR(h), Options{Workers: 1})
		m.register(t, o, nil)
		if err := o.Load(bytes.NewReader(old)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if g, _ := o.Group(0); g != h {
			t.Errorf("%s: group %+v, want %+v", name, g, h)
		}
		var got bytes.Buffer
		if err := o.Save(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), old) {
			t.Errorf("%s: Save does not reproduce the version-2 file", name)
		}
	}
}

// TestLoadManyGroupsBounded loads files of many more groups than the
// optimizer has: the mismatch is reported after the whole file is checked,
// and checking a group must not allocate more than a few times its bytes
// (about 7× now; checkIn's coefficient block, about 4 KB, was allocated
// per group: 41×).
func TestLoadManyGroupsBounded(t *testing.T) {
	big := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	for range 5000 {
		if _, err := big.AddGroup(DefaultAdam()); err != nil {
			t.Fatal(err)
		}
	}
	var full, shard bytes.Buffer
	if err := big.Save(&full); err != nil {
		t.Fatal(err)
	}
	if err := big.SaveShard(&shard); err != nil {
		t.Fatal(err)
	}
	o, _ := stateFile(t, DefaultAdam())
	for _, c := range []struct {
		what string
		data []byte
		load func(r io.Reader) error
	}{
		{"Load", full.Bytes(), o.Load},
		{"LoadShards", shard.Bytes(), func(r io.Reader) error { return o.LoadShards(r) }},
	} {
		before := snap(t, o)
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		err := c.load(bytes.NewReader(c.data))
		runtime.ReadMemStats(&m1)
		if !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s: err = %v, want a mismatch", c.what, err)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("%s: a failed load changed the optimizer", c.what)
		}
		if a, limit := m1.TotalAlloc-m0.TotalAlloc, 10*uint64(len(c.data)); a > limit {
			t.Errorf("%s of a %d-byte file of 5001 groups allocated %d bytes, want ≤ %d", c.what, len(c.data), a, limit)
		}
	}
}

// TestLoadV4WithoutHalf: version 4 is for files with a 16-bit parameter
// (Save writes 2 or 3 otherwise); a version-4 file of float32 parameters
// alone is not one Save writes, and Load refuses it.
func TestLoadV4WithoutHalf(t *testing.T) {
	o, _ := stateFile(t, DefaultAdam())
	var out bytes.Buffer
	if err := o.save(&out, true); err != nil { // version 4, float32 parameters alone
		t.Fatal(err)
	}
	o2, _ := stateFile(t, AdamConfig{LR: 0.02, Beta1: 0.8, Beta2: 0.9})
	loadFails(t, o2, out.Bytes(), ErrState, "version 4 without a 16-bit parameter")
}

// TestLoadShardsEmptyAllocates: an empty or short shard file costs no
// state-sized memory (LoadShards made every parameter's buffers before it
// read a byte: 8 MB here).
func TestLoadShardsEmptyAllocates(t *testing.T) {
	n := 1 << 20
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	if err := o.Add("w", make([]float32, n), make([]float32, n)); err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{nil, []byte("FUSEOPTZ")} {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		err := o.LoadShards(bytes.NewReader(data))
		runtime.ReadMemStats(&m1)
		if !errors.Is(err, ErrState) {
			t.Fatalf("%d bytes: %v, want ErrState", len(data), err)
		}
		if a := m1.TotalAlloc - m0.TotalAlloc; a > 1<<20 {
			t.Errorf("LoadShards of %d bytes allocated %d bytes", len(data), a)
		}
	}
}
