package optim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
)

// saveShards runs steps from..from+steps-1 of rule h over ranks ranks and
// returns every rank's shard file and model.
func saveShards[T Float](t *testing.T, m *testModel[T], h Hyper, op Options, ranks, from, steps int) (files [][]byte, models []*testModel[T]) {
	sr := newShardRun(t, m, h, nil, nil, op, ranks)
	for s := from; s < from+steps; s++ {
		for _, mr := range sr.models {
			mr.fillGrads(s)
		}
		sr.poison(t)
		if err := onRanks(ranks, func(r int) error { _, err := sr.opts[r].Step(); return err }); err != nil {
			t.Fatal(err)
		}
		sr.gather(t)
	}
	for _, o := range sr.opts {
		var b bytes.Buffer
		if err := o.Save(&b); err != nil {
			t.Fatal(err)
		}
		files = append(files, b.Bytes())
	}
	return files, sr.models
}

func readers(files ...[]byte) []io.Reader {
	out := make([]io.Reader, len(files))
	for i, f := range files {
		out[i] = bytes.NewReader(f)
	}
	return out
}

// TestShardReshard: the shard files of 2 ranks load into 3 ranks, into 1,
// into an optimizer that is not sharded, and a whole state file into 2
// ranks; each run goes on bit for bit as the single process that never
// stopped.
func TestShardReshard(t *testing.T) {
	for _, h := range []Hyper{DefaultNAdam(), DefaultLAMB(), SGDConfig{LR: 0.1, Momentum: 0.9}} {
		t.Run(h.Kind().String(), func(t *testing.T) { testReshard[float32](t, h) })
	}
	t.Run("Adam-f64", func(t *testing.T) { testReshard[float64](t, DefaultAdam()) })
}

func testReshard[T Float](t *testing.T, h Hyper) {
	op := Options{ChunkSize: 64, NonFinite: SkipStep}
	m := newTestModel[T](shardSizes)
	ref := mustNew[T](t, h, op)
	refModel := m.clone()
	refModel.register(t, ref, nil)
	for s := range 6 {
		refModel.fillGrads(s)
		mustStep(t, ref)
	}
	files, models := saveShards(t, m, h, op, 2, 0, 3)
	var whole bytes.Buffer
	{ // a single process after the same 3 steps
		o := mustNew[T](t, h, op)
		mm := m.clone()
		mm.register(t, o, nil)
		for s := range 3 {
			mm.fillGrads(s)
			mustStep(t, o)
		}
		if err := o.Save(&whole); err != nil {
			t.Fatal(err)
		}
	}
	for _, to := range []struct {
		ranks int
		whole bool // load the whole state file instead of the shards
		chunk int
	}{{3, false, 64}, {1, false, 64}, {0, false, 64}, {2, true, 64}, {3, false, 32}} {
		t.Run(fmt.Sprintf("to%d-whole=%v-chunk%d", to.ranks, to.whole, to.chunk), func(t *testing.T) {
			o2 := op
			o2.ChunkSize = to.chunk
			n := max(to.ranks, 1)
			var sr *shardRun[T]
			if to.ranks == 0 {
				sr = &shardRun[T]{}
				o := mustNew[T](t, h, o2)
				mm := models[0].clone()
				mm.register(t, o, nil)
				sr.opts, sr.models = append(sr.opts, o), append(sr.models, mm)
			} else {
				sr = newShardRun(t, models[0], h, nil, nil, o2, to.ranks)
			}
			for _, o := range sr.opts {
				var err error
				if to.whole {
					err = o.Load(bytes.NewReader(whole.Bytes()))
				} else {
					err = o.LoadShards(readers(files...)...)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			for s := 3; s < 6; s++ {
				for _, mr := range sr.models {
					mr.fillGrads(s)
				}
				sr.poison(t)
				if err := onRanks(n, func(r int) error { _, err := sr.opts[r].Step(); return err }); err != nil {
					t.Fatal(err)
				}
				sr.gather(t)
			}
			if to.chunk == op.ChunkSize {
				sr.same(t, ref, "after resharding")
				return
			}
			// Another chunk size: the element-wise rules give the same
			// bits; LAMB's sums are grouped by chunk.
			if _, ok := h.(reducer); !ok {
				sr.same(t, ref, "after resharding")
			}
		})
	}
}

// TestShardLoadErrors: an incomplete set, an element held twice, files of
// two saves, another kind, a corrupted or truncated file: each gives its
// error and changes nothing.
func TestShardLoadErrors(t *testing.T) {
	op := Options{ChunkSize: 64}
	m := newTestModel[float32](shardSizes)
	files, _ := saveShards(t, m, DefaultAdam(), op, 2, 0, 2)
	later, _ := saveShards(t, m, DefaultAdam(), op, 2, 0, 3)
	other, _ := saveShards(t, m, DefaultAdamW(), op, 2, 0, 2)
	three, _ := saveShards(t, m, DefaultAdam(), op, 3, 0, 2)
	corrupt := slices.Clone(files[1])
	corrupt[len(corrupt)/2] ^= 1
	o := mustNew[float32](t, DefaultAdam(), op)
	m.clone().register(t, o, nil)
	m.fillGrads(0)
	mustStep(t, o)
	before := snap(t, o)
	for _, c := range []struct {
		name  string
		files [][]byte
		want  error
	}{
		{"incomplete", files[:1], ErrState},
		{"twice", [][]byte{files[0], files[1], files[0]}, ErrState},
		{"overlapping sets", [][]byte{files[0], files[1], three[1]}, ErrState},
		{"two saves", [][]byte{files[0], later[1]}, ErrState},
		{"other kind", other, ErrMismatch},
		{"corrupted", [][]byte{files[0], corrupt}, ErrState},
		{"truncated", [][]byte{files[0], files[1][:len(files[1])-3]}, ErrState},
		{"trailing", [][]byte{files[0], append(slices.Clone(files[1]), 0)}, ErrState},
		{"none", nil, ErrInvalid},
	} {
		err := o.LoadShards(readers(c.files...)...)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("%s: a failed LoadShards changed the optimizer", c.name)
		}
	}
	// A three-rank set loads as well as a two-rank one.
	if err := o.LoadShards(readers(three...)...); err != nil {
		t.Fatal(err)
	}
	// A shard file through Load; a whole state file through LoadShards.
	var whole bytes.Buffer
	if err := o.Save(&whole); err != nil {
		t.Fatal(err)
	}
	if err := o.LoadShards(bytes.NewReader(whole.Bytes())); !errors.Is(err, ErrState) {
		t.Errorf("a whole state file through LoadShards: %v", err)
	}
	one := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 64, Shard: Shard{Ranks: 1}})
	m.clone().register(t, one, nil)
	if err := one.LoadShards(readers(files...)...); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := one.Save(&b); err != nil {
		t.Fatal(err)
	}
	if err := o.Load(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatalf("a one-rank shard file through Load: %v", err)
	}
}

// TestShardLoadOtherBuffers: a shard file whose rule keeps more state
// buffers than the loading group does now (AMSGrad, momentum turned off
// since), or fewer, loads as a whole state file does: the group takes the
// file's rule and the run continues bit for bit.
func TestShardLoadOtherBuffers(t *testing.T) {
	ams := AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true}
	plain := ams
	plain.AMSGrad = false
	mom := SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.5}
	for _, c := range []struct{ file, here Hyper }{{ams, plain}, {plain, ams}, {mom, DefaultSGD(0.1)}, {DefaultSGD(0.1), mom}} {
		sizes := []int{300, 17}
		a := newTestModel[float32](sizes)
		oa := mustNew[float32](t, c.file, Options{Workers: 1})
		a.register(t, oa, nil)
		for s := range 2 {
			a.fillGrads(s)
			mustStep(t, oa)
		}
		var file bytes.Buffer
		if err := oa.SaveShard(&file); err != nil {
			t.Fatal(err)
		}
		b := newTestModel[float32](sizes)
		for k := range sizes {
			copy(b.data[k], a.data[k])
		}
		ob := mustNew[float32](t, c.here, Options{Workers: 2})
		b.register(t, ob, nil)
		if err := ob.LoadShards(bytes.NewReader(file.Bytes())); err != nil {
			t.Fatalf("%+v into %+v: %v", c.file, c.here, err)
		}
		if h, _ := ob.Group(0); h != c.file {
			t.Fatalf("after LoadShards: group %+v, want the file's %+v", h, c.file)
		}
		stepBoth(t, a, oa, b, ob, 2, 4) // the resumed run is the uninterrupted one
		oa.Close()
		ob.Close()
	}
}

// TestShardFreshResave: a momentum buffer that SetGroup turned on after a
// step, saved before the next step (fresh: written without its values),
// loads into shards, is saved again before a step, and loads again, by
// shards and by a whole file into shards; the runs then go on bit for bit
// as the single process. A rank whose span of a parameter is empty must
// keep it fresh too (its file otherwise held the buffer where the owner's
// did not, and the set was refused).
func TestShardFreshResave(t *testing.T) {
	sgd, mom := SGDConfig{LR: 0.1}, SGDConfig{LR: 0.1, Momentum: 0.9}
	op := Options{ChunkSize: 64}
	m := newTestModel[float32](shardSizes)
	ref := mustNew[float32](t, sgd, op)
	refModel := m.clone()
	refModel.register(t, ref, nil)
	refModel.fillGrads(0)
	mustStep(t, ref)
	if err := ref.SetGroup(0, mom); err != nil {
		t.Fatal(err)
	}
	var whole bytes.Buffer
	if err := ref.Save(&whole); err != nil {
		t.Fatal(err)
	}
	for s := 1; s < 3; s++ {
		refModel.fillGrads(s)
		mustStep(t, ref)
	}

	// Two ranks step once, turn momentum on and save.
	sr := newShardRun(t, m, sgd, nil, nil, op, 2)
	for _, mr := range sr.models {
		mr.fillGrads(0)
	}
	if err := onRanks(2, func(r int) error { _, err := sr.opts[r].Step(); return err }); err != nil {
		t.Fatal(err)
	}
	sr.gather(t)
	for _, o := range sr.opts {
		if err := o.SetGroup(0, mom); err != nil {
			t.Fatal(err)
		}
	}
	files := saveSet(t, sr)
	for _, c := range []struct {
		name  string
		ranks int
		load  func(o *Optimizer[float32]) error
	}{
		{"shards", 3, func(o *Optimizer[float32]) error { return o.LoadShards(readers(files...)...) }},
		{"whole", 5, func(o *Optimizer[float32]) error { return o.Load(bytes.NewReader(whole.Bytes())) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			sr1 := newShardRun(t, sr.models[0], mom, nil, nil, op, c.ranks)
			for _, o := range sr1.opts {
				if err := c.load(o); err != nil {
					t.Fatal(err)
				}
			}
			again := saveSet(t, sr1) // before any step: still fresh
			sr2 := newShardRun(t, sr.models[0], mom, nil, nil, op, 2)
			for _, o := range sr2.opts {
				if err := o.LoadShards(readers(again...)...); err != nil {
					t.Fatalf("the set saved after loading: %v", err)
				}
			}
			for s := 1; s < 3; s++ {
				for _, mr := range sr2.models {
					mr.fillGrads(s)
				}
				sr2.poison(t)
				if err := onRanks(2, func(r int) error { _, err := sr2.opts[r].Step(); return err }); err != nil {
					t.Fatal(err)
				}
				sr2.gather(t)
			}
			sr2.same(t, ref, "after two loads of a fresh buffer")
		})
	}
}

// TestLoadShardFileUnloadable: Load of input that starts as a shard file,
// into an optimizer that loads no shard files (Adafactor, which cannot be
// sharded; 16-bit parameters), gives an error wrapping ErrState, as any
// bad or foreign input does, besides LoadShards' ErrInvalid: ErrMismatch
// for an intact shard file of another optimizer, and not for a truncated or
// garbled one, which is corrupted, not another optimizer's (ErrState
// alone); it gave ErrInvalid alone, then ErrMismatch for every file.
// Nothing changes.
func TestLoadShardFileUnloadable(t *testing.T) {
	af := mustNew[float32](t, DefaultAdafactor(), Options{Workers: 1})
	if err := af.Add("w", make([]float32, 12), make([]float32, 12), 3, 4); err != nil {
		t.Fatal(err)
	}
	half, _ := halfStateOptimizer(t, true)
	adam, _ := stateFile(t, DefaultAdam())
	var intact bytes.Buffer
	if err := adam.SaveShard(&intact); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]*Optimizer[float32]{"Adafactor": af, "16-bit": half} {
		for what, in := range map[string][]byte{
			"magic alone":   []byte(shardMagic),
			"garbage":       append([]byte(shardMagic), "\x01\x00\x00\x00garbage garbage garbage"...),
			"intact (Adam)": intact.Bytes(),
		} {
			before := snap(t, o)
			err := o.Load(bytes.NewReader(in))
			intact := what == "intact (Adam)"
			if errors.Is(err, ErrMismatch) != intact || !errors.Is(err, ErrState) || !errors.Is(err, ErrInvalid) {
				t.Errorf("%s, %s: %v, want ErrState and ErrInvalid, and ErrMismatch where intact", name, what, err)
			}
			if !snap(t, o).equal(before) {
				t.Errorf("%s, %s: the refused load changed the optimizer", name, what)
			}
		}
	}
}
