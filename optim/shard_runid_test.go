package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"math"
	"slices"
	"strings"
	"testing"
)

// fileRunID returns the run id a version 2 shard file carries.
func fileRunID(tb testing.TB, f []byte) uint64 {
	tb.Helper()
	if v := binary.LittleEndian.Uint32(f[8:]); v != 2 {
		tb.Fatalf("shard file version %d, want 2", v)
	}
	return binary.LittleEndian.Uint64(f[32:])
}

// asVersion1 rewrites a version 2 shard file as version 1 wrote it: no run
// id, its own checksum.
func asVersion1(f []byte) []byte {
	out := append([]byte{}, f[:32]...)
	binary.LittleEndian.PutUint32(out[8:], 1)
	out = append(out, f[40:len(f)-8]...)
	return binary.LittleEndian.AppendUint64(out, crc64.Checksum(out, crcTable))
}

// saveSet saves every rank's shard file of sr.
func saveSet[T Float](tb testing.TB, sr *shardRun[T]) [][]byte {
	tb.Helper()
	var files [][]byte
	for _, o := range sr.opts {
		var b bytes.Buffer
		if err := o.SaveShard(&b); err != nil {
			tb.Fatal(err)
		}
		files = append(files, b.Bytes())
	}
	return files
}

// stepRanks runs step s of every rank of sr: gradients, Step, all-gather.
func stepRanks[T Float](tb testing.TB, sr *shardRun[T], s int) {
	tb.Helper()
	for _, mr := range sr.models {
		mr.fillGrads(s)
	}
	sr.poison(tb)
	if err := onRanks(len(sr.opts), func(r int) error { _, err := sr.opts[r].Step(); return err }); err != nil {
		tb.Fatal(err)
	}
	sr.gather(tb)
}

// TestShardRunID: the shard files of two runs saved after the same step
// agree on every header; their run ids tell them apart, so that a set mixed
// from both is refused (it loaded before, each rank's state from another
// run). Every rank's files carry the same id; a set loaded and saved
// before a step carries the loaded id, and a run that goes on from a set
// gets its own; files differ in the id only; version 1 files still load.
func TestShardRunID(t *testing.T) {
	op := Options{ChunkSize: 64} // Propagate: no exchange but the id's
	m := newTestModel[float32](shardSizes)
	a, _ := saveShards(t, m, DefaultAdam(), op, 2, 0, 2)
	b, _ := saveShards(t, m, DefaultAdam(), op, 2, 0, 2) // the same run again
	ida := fileRunID(t, a[0])
	switch {
	case ida == 0 || ida >= maxRunID:
		t.Fatalf("run id %#x, want one in [1, 2⁵²)", ida)
	case fileRunID(t, a[1]) != ida:
		t.Fatalf("rank 1's run id %#x, rank 0's %#x", fileRunID(t, a[1]), ida)
	case fileRunID(t, b[0]) == ida:
		t.Fatalf("two runs drew the same id %#x", ida)
	}
	for r := range a {
		x, y := bytes.Clone(a[r]), bytes.Clone(b[r])
		clear(x[32:40])
		clear(y[32:40])
		if !bytes.Equal(x[:len(x)-8], y[:len(y)-8]) {
			t.Fatalf("rank %d: the files of two equal runs differ beyond their run ids", r)
		}
	}

	o := mustNew[float32](t, DefaultAdam(), op)
	m.clone().register(t, o, nil)
	before := snap(t, o)
	for _, mix := range [][][]byte{{a[0], b[1]}, {b[0], a[1]}, {a[0], asVersion1(a[1])}} {
		err := o.LoadShards(readers(mix...)...)
		if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "run id") {
			t.Errorf("a set mixed from two runs: %v, want ErrState naming the run ids", err)
		}
		if !snap(t, o).equal(before) {
			t.Fatal("a refused LoadShards changed the optimizer")
		}
	}
	for _, set := range [][][]byte{a, b, {asVersion1(a[0]), asVersion1(a[1])}} {
		if err := o.LoadShards(readers(set...)...); err != nil {
			t.Fatal(err)
		}
	}
	fromV1 := snap(t, o) // the version 1 set, loaded last
	if err := o.LoadShards(readers(a...)...); err != nil {
		t.Fatal(err)
	}
	if !snap(t, o).equal(fromV1) {
		t.Error("a version 1 set loads another state than its version 2 set")
	}

	// Loaded into three ranks and saved before a step: the loaded set's
	// id, in a set that loads with none of a's files beside it (each of
	// the three holds elements of both of a's). After a step: a new id.
	resume := func() *shardRun[float32] {
		sr := newShardRun(t, m, DefaultAdam(), nil, nil, op, 3)
		for _, o := range sr.opts {
			if err := o.LoadShards(readers(a...)...); err != nil {
				t.Fatal(err)
			}
		}
		return sr
	}
	c := resume()
	for r, f := range saveSet(t, c) {
		if id := fileRunID(t, f); id != ida {
			t.Errorf("rank %d of the loaded run, before a step: run id %#x, want the loaded %#x", r, id, ida)
		}
	}
	// A Step that moves no parameter (every gradient None) leaves the
	// state, and so the id, the loaded set's.
	for _, o := range c.opts {
		for _, name := range m.names {
			if err := o.SetNoGrad(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	stepRanks(t, c, 2)
	if id := fileRunID(t, saveSet(t, c)[0]); id != ida {
		t.Errorf("after a Step of no parameter: run id %#x, want the loaded %#x", id, ida)
	}
	stepRanks(t, c, 2)
	d := resume()
	stepRanks(t, d, 2)
	cf, df := saveSet(t, c), saveSet(t, d)
	idc := fileRunID(t, cf[0])
	if idc == ida || idc == fileRunID(t, df[0]) || fileRunID(t, cf[2]) != idc {
		t.Errorf("runs resumed from one set: ids %#x, %#x and %#x on rank 2; the set's %#x", idc, fileRunID(t, df[0]), fileRunID(t, cf[2]), ida)
	}
	if err := o.LoadShards(readers(cf[0], df[1], cf[2])...); !errors.Is(err, ErrState) {
		t.Errorf("two runs resumed from one set, mixed: %v, want ErrState", err)
	}
	if err := o.LoadShards(readers(df...)...); err != nil {
		t.Fatal(err)
	}

	// A whole state file carries no id: loaded, the shards save 0 until
	// they step. An optimizer not sharded over several ranks saves 0.
	var whole bytes.Buffer
	if err := o.Save(&whole); err != nil {
		t.Fatal(err)
	}
	for _, o := range c.opts {
		if err := o.Load(bytes.NewReader(whole.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
	for r, f := range saveSet(t, c) {
		if id := fileRunID(t, f); id != 0 {
			t.Errorf("rank %d after loading a whole state file: run id %#x, want 0", r, id)
		}
	}
	stepRanks(t, c, 3)
	cw := saveSet(t, c)
	if id := fileRunID(t, cw[1]); id == idc || id == 0 || id >= maxRunID || fileRunID(t, cw[0]) != id {
		t.Errorf("after a load and a step: run ids %#x and %#x, want one new id in [1, 2⁵²), not the run's %#x before the load", fileRunID(t, cw[0]), id, idc)
	}
	// One rank, and an optimizer that is not sharded, save 0, after
	// loading a set too.
	one, _ := saveShards(t, m, DefaultAdam(), op, 1, 0, 2)
	r1 := newShardRun(t, m, DefaultAdam(), nil, nil, op, 1)
	if err := r1.opts[0].LoadShards(readers(a...)...); err != nil {
		t.Fatal(err)
	}
	if err := o.LoadShards(readers(a...)...); err != nil {
		t.Fatal(err)
	}
	var flat bytes.Buffer
	if err := o.SaveShard(&flat); err != nil {
		t.Fatal(err)
	}
	for what, f := range map[string][]byte{"one rank": one[0], "one rank after a load": saveSet(t, r1)[0], "not sharded, after a load": flat.Bytes()} {
		if id := fileRunID(t, f); id != 0 {
			t.Errorf("%s: run id %#x, want 0", what, id)
		}
	}
}

// recReducer records the lengths a rank passes to AllReduceSum and gives
// back what stubReducer does; fail makes the next call fail.
type recReducer struct {
	stub stubReducer
	lens []int
	fail error
}

func (r *recReducer) AllReduceSum(x []float64) error {
	r.lens = append(r.lens, len(x))
	if err := r.fail; err != nil {
		r.fail = nil
		return err
	}
	return r.stub.AllReduceSum(x)
}

// TestShardRunIDExchange: the first Step of a shard of several ranks makes
// one AllReduceSum of one value, before anything changes, and later steps
// none for the id; a failed exchange leaves the optimizer as it was and
// the next Step exchanges again; a Reducer that does not sum is refused
// (ErrInvalid) before anything changes; a refused first step leaves the
// files' id at 0.
func TestShardRunIDExchange(t *testing.T) {
	for _, rank := range []int{0, 1} {
		boom := errors.New("network down")
		red := &recReducer{fail: boom}
		m := newTestModel[float32](shardSizes)
		o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 64, Shard: Shard{Rank: rank, Ranks: 2, Reducer: red}})
		m.register(t, o, nil)
		m.fillGrads(0)
		before := snap(t, o)
		if _, err := o.Step(); !errors.Is(err, boom) {
			t.Fatalf("rank %d: a failed exchange: %v", rank, err)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("rank %d: a failed id exchange changed the optimizer", rank)
		}
		mustStep(t, o)
		mustStep(t, o)
		if want := []int{1, 1}; !slices.Equal(red.lens, want) {
			t.Errorf("rank %d: AllReduceSum lengths %v over three Steps, want %v", rank, red.lens, want)
		}
		var f bytes.Buffer
		if err := o.SaveShard(&f); err != nil {
			t.Fatal(err)
		}
		if id := fileRunID(t, f.Bytes()); id == 0 || (rank == 1 && id != 7) {
			t.Errorf("rank %d: run id %#x", rank, id)
		}
	}

	// Rank 1 of a Reducer that gives back its zeros.
	m := newTestModel[float32](shardSizes)
	o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 64, Shard: Shard{Rank: 1, Ranks: 2, Reducer: zeroReducer{}}})
	m.register(t, o, nil)
	m.fillGrads(0)
	before := snap(t, o)
	if _, err := o.Step(); !errors.Is(err, ErrInvalid) {
		t.Errorf("a Reducer that does not sum: %v, want ErrInvalid", err)
	}
	if !snap(t, o).equal(before) {
		t.Fatal("a refused id changed the optimizer")
	}

	// A first step refused for a non-finite gradient, after the id's
	// exchange: nothing changed, the files' id with it.
	red := &stubReducer{}
	o = mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 64, NonFinite: ErrorOnNonFinite, Shard: Shard{Rank: 1, Ranks: 2, Reducer: red}})
	m = newTestModel[float32](shardSizes)
	m.register(t, o, nil)
	m.fillGrads(0)
	lo, hi, err := o.ShardSpan(m.names[len(m.names)-1])
	if err != nil || hi == lo {
		t.Fatal(lo, hi, err)
	}
	m.grad[len(m.grad)-1][lo] = float32(math.Inf(1))
	before = snap(t, o)
	if _, err := o.Step(); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("a non-finite gradient: %v, want ErrNonFinite", err)
	}
	if !snap(t, o).equal(before) || fileRunID(t, before.state) != 0 {
		t.Fatal("a refused first step changed the state or its files' id")
	}
	m.fillGrads(0)
	mustStep(t, o)
	if id := fileRunID(t, snap(t, o).state); id != 7 {
		t.Errorf("after the first step that updated: run id %#x, want 7", id)
	}
}

// zeroReducer gives back what it is given: the other ranks contribute
// nothing, not even rank 0's id (a Reducer that does not sum).
type zeroReducer struct{}

func (zeroReducer) AllReduceSum(x []float64) error { return nil }

// TestShardRollbackRunID: a run that rolls back to an earlier set (or a
// whole state file) and steps to the same step count again writes files
// of another id than those it wrote after that step before the load: a
// set mixed from the two saves (one rank's save failed, say, and its old
// file is left) is refused, not loaded with each rank's elements from
// another state. A rank that did not load writes the old id.
func TestShardRollbackRunID(t *testing.T) {
	op := Options{ChunkSize: 64}
	m := newTestModel[float32](shardSizes)
	for _, whole := range []bool{false, true} {
		sr := newShardRun(t, m, DefaultAdam(), nil, nil, op, 2)
		stepRanks(t, sr, 0)
		s0 := saveSet(t, sr)
		var w0 bytes.Buffer // the state after one step, as a whole file
		one := mustNew[float32](t, DefaultAdam(), op)
		m.clone().register(t, one, nil)
		if err := one.LoadShards(readers(s0...)...); err != nil {
			t.Fatal(err)
		}
		if err := one.Save(&w0); err != nil {
			t.Fatal(err)
		}
		stepRanks(t, sr, 1)
		s1 := saveSet(t, sr)
		for _, o := range sr.opts { // roll back
			var err error
			if whole {
				err = o.Load(bytes.NewReader(w0.Bytes()))
			} else {
				err = o.LoadShards(readers(s0...)...)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		stepRanks(t, sr, 7) // another batch
		s2 := saveSet(t, sr)
		id1, id2 := fileRunID(t, s1[0]), fileRunID(t, s2[0])
		if id2 == id1 || id2 == 0 || id2 >= maxRunID || fileRunID(t, s2[1]) != id2 {
			t.Errorf("whole %v: run ids %#x before the rollback, %#x and %#x after, want one new id", whole, id1, id2, fileRunID(t, s2[1]))
		}
		o := mustNew[float32](t, DefaultAdam(), op)
		m.clone().register(t, o, nil)
		before := snap(t, o)
		for _, mix := range [][][]byte{{s1[0], s2[1]}, {s2[0], s1[1]}} {
			if err := o.LoadShards(readers(mix...)...); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "run id") {
				t.Errorf("whole %v: a set mixed from the saves before and after a rollback: %v, want ErrState naming the run ids", whole, err)
			}
		}
		if !snap(t, o).equal(before) {
			t.Fatal("a refused LoadShards changed the optimizer")
		}
		for _, set := range [][][]byte{s1, s2} {
			if err := o.LoadShards(readers(set...)...); err != nil {
				t.Fatal(err)
			}
		}
		// A failed load leaves the id: rank 1's refused load and a step
		// keep both ranks on one id.
		if err := sr.opts[1].LoadShards(readers(s1[0], s2[1])...); !errors.Is(err, ErrState) {
			t.Fatalf("whole %v: a mixed set: %v, want ErrState", whole, err)
		}
		stepRanks(t, sr, 8)
		s3 := saveSet(t, sr)
		if fileRunID(t, s3[0]) != id2 || fileRunID(t, s3[1]) != id2 {
			t.Errorf("whole %v: after a refused load: run ids %#x and %#x, want the run's %#x", whole, fileRunID(t, s3[0]), fileRunID(t, s3[1]), id2)
		}
	}
}

// TestShardRestoreRunID: a rank that loads an earlier set and then puts
// its own state back (its load succeeded where another rank's failed: the
// others kept their state, as fusempi's LoadCheckpoint has it) puts back
// its run id too, so that the run's next files are one set; a load of
// the earlier set again (no undo) moves the id on.
func TestShardRestoreRunID(t *testing.T) {
	op := Options{ChunkSize: 64}
	m := newTestModel[float32](shardSizes)
	sr := newShardRun(t, m, DefaultAdam(), nil, nil, op, 2)
	stepRanks(t, sr, 0)
	ckpt := saveSet(t, sr) // an earlier checkpoint
	stepRanks(t, sr, 1)
	before := saveSet(t, sr) // each rank's own state
	if err := sr.opts[0].LoadShards(readers(ckpt...)...); err != nil {
		t.Fatal(err)
	}
	if err := sr.opts[0].LoadShards(bytes.NewReader(before[0])); err != nil {
		t.Fatal(err)
	}
	// A load of the state a rank holds leaves its id.
	if err := sr.opts[1].LoadShards(bytes.NewReader(before[1])); err != nil {
		t.Fatal(err)
	}
	stepRanks(t, sr, 2)
	after := saveSet(t, sr)
	if a, b := fileRunID(t, after[0]), fileRunID(t, after[1]); a != b || a != fileRunID(t, before[0]) {
		t.Errorf("run ids after the restore: rank 0 %#x, rank 1 %#x, want the run's %#x on both", a, b, fileRunID(t, before[0]))
	}
	o := mustNew[float32](t, DefaultAdam(), op)
	m.clone().register(t, o, nil)
	if err := o.LoadShards(readers(after...)...); err != nil {
		t.Errorf("the set of a run whose ranks all hold one state: %v", err)
	}
	// The restore is undone by a Step: a load of before's files after it
	// is a rollback, and moves the id on.
	for _, o := range sr.opts {
		if err := o.LoadShards(readers(before...)...); err != nil {
			t.Fatal(err)
		}
	}
	stepRanks(t, sr, 3)
	again := saveSet(t, sr)
	if a, b := fileRunID(t, again[0]), fileRunID(t, again[1]); a != b || a == fileRunID(t, after[0]) {
		t.Errorf("run ids after a rollback: %#x and %#x, want one id other than %#x", a, b, fileRunID(t, after[0]))
	}
}
