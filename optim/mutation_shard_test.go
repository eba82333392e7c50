package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"math"
	"testing"
)

// Tests of shard.go and shard_state.go: each pins documented behaviour
// that no other test checked.

// shardFileParam is where the fields of the first parameter of a version 2
// shard file lie (sc: its first scalar's value, 0 when it has none).
type shardFileParam struct {
	group, dims, length, step, sc, lo, hi, nbuf int
}

// skipGroups returns the offset past the group records of a state or
// shard file whose group count lies at f[at:] and whose records follow it:
// each a scalar count, then for each scalar a name's length byte, the name
// and its float64 value.
func skipGroups(f []byte, at int) int {
	off := at + 4
	for range binary.LittleEndian.Uint32(f[at:]) {
		n := int(f[off])
		off++
		for range n {
			off += 1 + int(f[off]) + 8
		}
	}
	return off
}

// firstShardParam walks a version 2 shard file's groups to its first
// parameter.
func firstShardParam(tb testing.TB, f []byte) shardFileParam {
	tb.Helper()
	off := skipGroups(f, 40)
	off += 4                                            // the parameter count
	off += 2 + int(binary.LittleEndian.Uint16(f[off:])) // the name
	var p shardFileParam
	p.group, p.dims = off, off+5
	off += 4
	off += 1 + 8*int(f[off])
	p.length, p.step = off, off+8
	off += 16
	n := int(f[off])
	off++
	for k := range n {
		off += 1 + int(f[off])
		if k == 0 {
			p.sc = off
		}
		off += 8
	}
	p.lo, p.hi, p.nbuf = off, off+8, off+16
	return p
}

// invalidFile reports whether err is a load error of files that are
// corrupted, invalid or not of one save (ErrState), and not of intact files
// that do not belong to the optimizer (ErrMismatch, which matches ErrState
// too).
func invalidFile(err error) bool {
	return errors.Is(err, ErrState) && !errors.Is(err, ErrMismatch)
}

// resealed returns f with its checksum recomputed.
func resealed(f []byte) []byte {
	out := bytes.Clone(f)
	binary.LittleEndian.PutUint64(out[len(out)-8:], crc64.Checksum(out[:len(out)-8], crcTable))
	return out
}

// oneParamShards returns an Adam optimizer with one parameter "p" of 40
// elements, stepped once, and its shard file (unsharded: every element).
func oneParamShards(t *testing.T) (*Optimizer[float32], []byte) {
	t.Helper()
	o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1})
	m := newTestModel[float32]([]int{40})
	m.names[0] = "p"
	m.register(t, o, nil)
	m.fillGrads(0)
	mustStep(t, o)
	var b bytes.Buffer
	if err := o.SaveShard(&b); err != nil {
		t.Fatal(err)
	}
	return o, b.Bytes()
}

// TestShardMaxRanks: MaxRanks is the largest Shard.Ranks accepted, by New
// and by ShardBounds alike; ShardBounds refuses lengths whose sum overflows
// an int with ErrLength.
func TestShardMaxRanks(t *testing.T) {
	o, err := New[float32](DefaultAdam(), Options{Shard: Shard{Rank: MaxRanks - 1, Ranks: MaxRanks, Reducer: &stubReducer{}}})
	if err != nil {
		t.Fatalf("Ranks = MaxRanks: %v", err)
	}
	o.Close()
	b, err := ShardBounds([]int{10}, 16, MaxRanks)
	if err != nil || len(b) != MaxRanks+1 || b[0] != 0 || b[MaxRanks] != 10 {
		t.Fatalf("ShardBounds over MaxRanks ranks: %d bounds, %v", len(b), err)
	}
	if _, err := ShardBounds([]int{math.MaxInt, 1}, 16, 2); !errors.Is(err, ErrLength) {
		t.Fatalf("lengths adding up past MaxInt: %v, want ErrLength", err)
	}
}

// halveElems returns the file f of one Adam parameter of 40 elements with
// each buffer's data cut to 80 bytes, as 2-byte elements would take.
func halveElems(f []byte, p shardFileParam) []byte {
	out := bytes.Clone(f[:p.nbuf+1])
	at := p.nbuf + 1
	for range int(f[p.nbuf]) {
		kl := int(f[at])
		out = append(out, f[at:at+1+kl+80]...)
		at += 1 + kl + 40*4
	}
	return append(out, f[len(f)-8:]...)
}

// TestShardFileHeaderChecks: a shard file whose header or parameter
// fields hold invalid values (LoadShards checks them as Load does), with a
// valid checksum, is refused with ErrState and leaves the optimizer
// unchanged, even where the element ranges it claims would cover the
// loading rank's span; the file itself loads.
func TestShardFileHeaderChecks(t *testing.T) {
	o, f := oneParamShards(t)
	p := firstShardParam(t, f)
	// Two ranks over the same parameter: rank 0 keeps [0, 16), rank 1
	// [16, 40).
	var ranks [2]*Optimizer[float32]
	for r := range ranks {
		ranks[r] = mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1, Shard: Shard{Rank: r, Ranks: 2, Reducer: &stubReducer{}}})
		if err := ranks[r].Add("p", make([]float32, 40), make([]float32, 40)); err != nil {
			t.Fatal(err)
		}
	}
	if lo, hi, _ := ranks[0].ShardSpan("p"); lo != 0 || hi != 16 {
		t.Fatalf("rank 0 keeps [%d, %d), want [0, 16)", lo, hi)
	}
	u32 := func(at int, v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[at:], v) }
	}
	u64 := func(at int, v int64) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint64(b[at:], uint64(v)) }
	}
	both := func(fs ...func([]byte)) func([]byte) {
		return func(b []byte) {
			for _, f := range fs {
				f(b)
			}
		}
	}
	for _, c := range []struct {
		name string
		into *Optimizer[float32]
		edit func([]byte)
	}{
		{"version 0", o, u32(8, 0)},
		{"version 3", o, u32(8, 3)},
		{"reserved byte 14", o, func(b []byte) { b[14] = 1 }},
		{"reserved byte 15", o, func(b []byte) { b[15] = 1 }},
		{"rank = ranks", o, both(u32(16, 1), u32(20, 1))},
		{"ranks 0", o, u32(20, 0)},
		{"group = group count", o, u32(p.group, binary.LittleEndian.Uint32(f[40:]))},
		// 40 elements each, as the data holds.
		{"lo < 0", ranks[0], both(u64(p.lo, -16), u64(p.hi, 24))},
		{"hi > length", ranks[1], both(u64(p.lo, 1), u64(p.hi, 41))},
		{"lo > hi", o, both(u64(p.lo, 30), u64(p.hi, 20))},
		{"step > MaxStep", o, u64(p.step, MaxStep+1)},
		{"step < 0", o, u64(p.step, -1)},
		{"length > MaxInt64/8", o, both(u64(p.group+5, 1<<62), u64(p.length, 1<<62))},
		// The data follows, 2 bytes an element (halveElems).
		{"2-byte elements", o, func(b []byte) { b[13] = 2 }},
		{"kind 255", o, func(b []byte) { b[12] = 255 }},
		{"magic", o, func(b []byte) { b[7] ^= 1 }},
		{"a negative first group value", o, func(b []byte) {
			binary.LittleEndian.PutUint64(b[45+1+int(b[45]):], math.Float64bits(-1))
		}},
		{"a buffer's key", o, func(b []byte) { b[p.nbuf+2] ^= 1 }},
		{"exp_avg_sq < 0", o, func(b []byte) {
			at := p.nbuf + 1
			at += 1 + int(b[at]) + 40*4
			at += 1 + int(b[at])
			binary.LittleEndian.PutUint32(b[at:], math.Float32bits(-1))
		}},
		// Adam keeps 2 buffers; the file then holds its first only.
		{"one state buffer", o, func(b []byte) { b[p.nbuf] = 1 }},
	} {
		b := bytes.Clone(f)
		c.edit(b)
		if c.name == "2-byte elements" {
			b = halveElems(b, p)
		}
		if c.name == "one state buffer" {
			cut := p.nbuf + 1 + 1 + int(b[p.nbuf+1]) + 40*4
			b = append(b[:cut:cut], b[len(b)-8:]...)
		}
		before := snap(t, c.into)
		err := c.into.LoadShards(bytes.NewReader(resealed(b)))
		if !invalidFile(err) {
			t.Errorf("%s: %v, want ErrState, not ErrMismatch", c.name, err)
		}
		if !snap(t, c.into).equal(before) {
			t.Fatalf("%s: a refused LoadShards changed the optimizer", c.name)
		}
	}
	for _, into := range []*Optimizer[float32]{o, ranks[0], ranks[1]} {
		if err := into.LoadShards(bytes.NewReader(resealed(f))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShardFileMismatch: a set that holds a file of another element type,
// a file with fewer groups or parameters than the optimizer has, with
// another parameter's name or group, is refused with
// ErrMismatch, wherever the file lies in the set and even when the other
// files hold every element; the optimizer is unchanged.
func TestShardFileMismatch(t *testing.T) {
	o, f := oneParamShards(t)
	o64 := mustNew[float64](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1})
	m := newTestModel[float64]([]int{40})
	m.names[0] = "p"
	m.register(t, o64, nil)
	m.fillGrads(0)
	mustStep(t, o64)
	var f64 bytes.Buffer
	if err := o64.SaveShard(&f64); err != nil {
		t.Fatal(err)
	}
	before := snap(t, o)
	for _, set := range [][][]byte{{f64.Bytes(), f}, {f, f64.Bytes()}} {
		if err := o.LoadShards(readers(set...)...); !errors.Is(err, ErrMismatch) {
			t.Errorf("a float64 file beside a float32 set: %v, want ErrMismatch", err)
		}
		if !snap(t, o).equal(before) {
			t.Fatal("a refused LoadShards changed the optimizer")
		}
	}
	two := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1})
	if _, err := two.AddGroup(DefaultAdam()); err != nil {
		t.Fatal(err)
	}
	if err := two.Add("p", make([]float32, 40), make([]float32, 40)); err != nil {
		t.Fatal(err)
	}
	before = snap(t, two)
	if err := two.LoadShards(bytes.NewReader(f)); !errors.Is(err, ErrMismatch) {
		t.Errorf("a file of 1 group into 2 groups: %v, want ErrMismatch", err)
	}
	if !snap(t, two).equal(before) {
		t.Fatal("a refused LoadShards changed the optimizer")
	}
	// The same parameter in group 1 of the file, in group 0 here.
	other := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1})
	if _, err := other.AddGroup(DefaultAdam()); err != nil {
		t.Fatal(err)
	}
	if err := other.AddTo(1, "p", make([]float32, 40), make([]float32, 40)); err != nil {
		t.Fatal(err)
	}
	var g1 bytes.Buffer
	if err := other.SaveShard(&g1); err != nil {
		t.Fatal(err)
	}
	if err := two.LoadShards(bytes.NewReader(g1.Bytes())); !errors.Is(err, ErrMismatch) {
		t.Errorf("a file of p in group 1 into p in group 0: %v, want ErrMismatch", err)
	}
	named := bytes.Clone(f)
	named[firstShardParam(t, f).group-1] = 'q'
	if err := o.LoadShards(bytes.NewReader(resealed(named))); !errors.Is(err, ErrMismatch) {
		t.Errorf("a file whose parameter is q, into p: %v, want ErrMismatch", err)
	}
	more := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1})
	for _, name := range []string{"p", "q"} {
		if err := more.Add(name, make([]float32, 40), make([]float32, 40)); err != nil {
			t.Fatal(err)
		}
	}
	before = snap(t, more)
	if err := more.LoadShards(bytes.NewReader(f)); !errors.Is(err, ErrMismatch) {
		t.Errorf("a file of 1 parameter into 2: %v, want ErrMismatch", err)
	}
	if !snap(t, more).equal(before) {
		t.Fatal("a refused LoadShards changed the optimizer")
	}
}

// TestShardSetHeadersAgree: the files of a set must repeat the first
// file's header of every parameter (group, shape, step, scalars): a file
// that differs in one is refused with ErrState (not one save), though each
// file alone fits the optimizer; the set as saved loads.
func TestShardSetHeadersAgree(t *testing.T) {
	newOpt := func(s Shard) *Optimizer[float32] {
		o := mustNew[float32](t, DefaultNAdam(), Options{ChunkSize: 16, Workers: 1, Shard: s})
		if _, err := o.AddGroup(DefaultNAdam()); err != nil {
			t.Fatal(err)
		}
		if err := o.AddTo(0, "p", make([]float32, 40), make([]float32, 40), 5, 8); err != nil {
			t.Fatal(err)
		}
		return o
	}
	var files [][]byte
	for r := range 2 {
		var b bytes.Buffer
		if err := newOpt(Shard{Rank: r, Ranks: 2, Reducer: &stubReducer{}}).SaveShard(&b); err != nil {
			t.Fatal(err)
		}
		files = append(files, b.Bytes())
	}
	o := newOpt(Shard{})
	p := firstShardParam(t, files[1])
	if p.sc == 0 {
		t.Fatal("a NAdam parameter without its scalar")
	}
	before := snap(t, o)
	for _, c := range []struct {
		name string
		edit func([]byte)
	}{
		{"group", func(b []byte) { binary.LittleEndian.PutUint32(b[p.group:], 1) }},
		{"shape", func(b []byte) {
			binary.LittleEndian.PutUint64(b[p.dims:], 8)
			binary.LittleEndian.PutUint64(b[p.dims+8:], 5)
		}},
		{"step", func(b []byte) { binary.LittleEndian.PutUint64(b[p.step:], 1) }},
		{"first group's first value", func(b []byte) {
			at := 45 + 1 + int(b[45])
			v := math.Float64frombits(binary.LittleEndian.Uint64(b[at:]))
			binary.LittleEndian.PutUint64(b[at:], math.Float64bits(v/2))
		}},
		{"scalar", func(b []byte) {
			v := math.Float64frombits(binary.LittleEndian.Uint64(b[p.sc:]))
			binary.LittleEndian.PutUint64(b[p.sc:], math.Float64bits(v/2))
		}},
	} {
		b := bytes.Clone(files[1])
		c.edit(b)
		if err := o.LoadShards(readers(files[0], resealed(b))...); !invalidFile(err) {
			t.Errorf("a file whose %s differs: %v, want ErrState, not ErrMismatch", c.name, err)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("%s: a refused LoadShards changed the optimizer", c.name)
		}
	}
	// Both files alike, with a scalar that no save writes: its key, or its
	// value before the first step.
	for _, c := range []struct {
		name string
		edit func([]byte)
	}{
		{"a scalar's key", func(b []byte) { b[p.sc-2] ^= 1 }},
		{"a scalar's value at step 0", func(b []byte) {
			v := math.Float64frombits(binary.LittleEndian.Uint64(b[p.sc:]))
			binary.LittleEndian.PutUint64(b[p.sc:], math.Float64bits(v/2))
		}},
	} {
		var set [][]byte
		for _, f := range files {
			b := bytes.Clone(f)
			c.edit(b)
			set = append(set, resealed(b))
		}
		if err := o.LoadShards(readers(set...)...); !invalidFile(err) {
			t.Errorf("%s: %v, want ErrState, not ErrMismatch", c.name, err)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("%s: a refused LoadShards changed the optimizer", c.name)
		}
	}
	if err := o.LoadShards(readers(files...)...); err != nil {
		t.Fatal(err)
	}
}

// fixedReducer gives back v as the sum of its first exchange (the run id
// of a rank that is not rank 0) and leaves the later ones as they are.
type fixedReducer struct {
	v     float64
	calls int
}

func (f *fixedReducer) AllReduceSum(x []float64) error {
	if f.calls == 0 {
		x[0] = f.v
	}
	f.calls++
	return nil
}

// TestShardRunIDRange: a run id summed by the Reducer must be an integer
// in [1, 2⁵²): any other sum is refused with ErrInvalid and leaves the
// optimizer unchanged; 2⁵² - 1 is taken, and the files carry it.
func TestShardRunIDRange(t *testing.T) {
	for _, v := range []float64{maxRunID, 1.5, maxRunID - 0.5, 0.5} {
		o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1, Shard: Shard{Rank: 1, Ranks: 2, Reducer: &fixedReducer{v: v}}})
		m := newTestModel[float32]([]int{40})
		m.register(t, o, nil)
		m.fillGrads(0)
		before := snap(t, o)
		if _, err := o.Step(); !errors.Is(err, ErrInvalid) {
			t.Errorf("a run id summed to %v: %v, want ErrInvalid", v, err)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("a refused run id %v changed the optimizer", v)
		}
	}
	o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1, Shard: Shard{Rank: 1, Ranks: 2, Reducer: &fixedReducer{v: maxRunID - 1}}})
	m := newTestModel[float32]([]int{40})
	m.register(t, o, nil)
	m.fillGrads(0)
	mustStep(t, o)
	if id := fileRunID(t, snap(t, o).state); id != maxRunID-1 {
		t.Fatalf("run id %#x, want %#x", id, uint64(maxRunID-1))
	}
}

// TestShardStateInitial: before the first step, ShardState returns the
// rule's initial value over the rank's span (Adagrad's
// InitialAccumulatorValue), as State does without sharding, with the
// span's start as lo. A shard file saved then holds them too.
func TestShardStateInitial(t *testing.T) {
	h := AdagradConfig{LR: 0.1, InitialAccumulatorValue: 0.25, Eps: 1e-10}
	for _, s := range []Shard{{}, {Rank: 0, Ranks: 2, Reducer: &stubReducer{}}, {Rank: 1, Ranks: 2, Reducer: &stubReducer{}}} {
		o := mustNew[float32](t, h, Options{ChunkSize: 16, Workers: 1, Shard: s})
		if err := o.Add("p", make([]float32, 40), make([]float32, 40)); err != nil {
			t.Fatal(err)
		}
		lo, hi, err := o.ShardSpan("p")
		if err != nil {
			t.Fatal(err)
		}
		at, vals, err := o.ShardState("p", BufSum)
		if err != nil || at != lo || len(vals) != hi-lo || hi == lo {
			t.Fatalf("%+v: ShardState at %d, %d values, %v; span [%d, %d)", s, at, len(vals), err, lo, hi)
		}
		for i, v := range vals {
			if v != 0.25 {
				t.Fatalf("%+v: element %d of the span: %v, want the initial 0.25", s, lo+i, v)
			}
		}
		// Its shard file holds the initial values: it loads back.
		var b bytes.Buffer
		if err := o.SaveShard(&b); err != nil {
			t.Fatal(err)
		}
		if err := o.LoadShards(&b); err != nil {
			t.Fatalf("%+v: a shard file saved before the first step: %v", s, err)
		}
	}
}

// TestShardSetFreshAgree: the files of a set agree on whether a stepped
// parameter's buffers are saved (SGD's momentum_buffer, left out while it
// is fresh): a set in which one file holds them and another does not is
// refused with ErrState, and the optimizer is unchanged.
func TestShardSetFreshAgree(t *testing.T) {
	h := SGDConfig{LR: 0.1, Momentum: 0.9}
	var files [][]byte
	for r := range 2 {
		o := mustNew[float32](t, h, Options{ChunkSize: 16, Workers: 1, Shard: Shard{Rank: r, Ranks: 2, Reducer: &stubReducer{}}})
		if err := o.Add("p", make([]float32, 40), make([]float32, 40)); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := o.SaveShard(&b); err != nil {
			t.Fatal(err)
		}
		// As after one step: step 1, the momentum buffer held.
		f := b.Bytes()
		p := firstShardParam(t, f)
		if f[p.nbuf] != 1 {
			t.Fatalf("rank %d: %d buffers, want the momentum buffer", r, f[p.nbuf])
		}
		binary.LittleEndian.PutUint64(f[p.step:], 1)
		files = append(files, resealed(f))
	}
	o := mustNew[float32](t, h, Options{ChunkSize: 16, Workers: 1})
	if err := o.Add("p", make([]float32, 40), make([]float32, 40)); err != nil {
		t.Fatal(err)
	}
	if err := o.LoadShards(readers(files...)...); err != nil {
		t.Fatal(err)
	}
	// Rank 1's file without the buffer: as saved while it is fresh.
	p := firstShardParam(t, files[1])
	fresh := append(bytes.Clone(files[1][:p.nbuf+1]), files[1][len(files[1])-8:]...)
	fresh[p.nbuf] = 0
	fresh = resealed(fresh)
	before := snap(t, o)
	for _, set := range [][][]byte{{files[0], fresh}, {fresh, files[0]}} {
		if err := o.LoadShards(readers(set...)...); !invalidFile(err) {
			t.Errorf("one file with the momentum buffer, one without: %v, want ErrState, not ErrMismatch", err)
		}
		if !snap(t, o).equal(before) {
			t.Fatal("a refused LoadShards changed the optimizer")
		}
	}
}

// TestShardLoadSubset: a rank may be given only some files of a set, as
// long as they hold its spans; files that hold elements outside its spans
// only, before or after them, with gaps between, do not matter.
func TestShardLoadSubset(t *testing.T) {
	newOpt := func(s Shard) *Optimizer[float32] {
		o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1, Shard: s})
		if err := o.Add("p", make([]float32, 80), make([]float32, 80)); err != nil {
			t.Fatal(err)
		}
		return o
	}
	// Five ranks: one chunk of 16 elements each.
	var files [][]byte
	for r := range 5 {
		var b bytes.Buffer
		if err := newOpt(Shard{Rank: r, Ranks: 5, Reducer: &stubReducer{}}).SaveShard(&b); err != nil {
			t.Fatal(err)
		}
		files = append(files, b.Bytes())
	}
	// Two ranks: [0, 32) and [32, 80).
	var ranks [2]*Optimizer[float32]
	for r := range ranks {
		ranks[r] = newOpt(Shard{Rank: r, Ranks: 2, Reducer: &stubReducer{}})
	}
	if lo, hi, _ := ranks[1].ShardSpan("p"); lo != 32 || hi != 80 {
		t.Fatalf("rank 1 keeps [%d, %d), want [32, 80)", lo, hi)
	}
	for _, c := range []struct {
		rank  int
		files []int
	}{
		{0, []int{0, 1, 4}},    // [64, 80) after the span, a gap before it
		{1, []int{0, 2, 3, 4}}, // [0, 16) before the span, a gap after it
		{1, []int{4, 3, 0, 2}},
	} {
		var set [][]byte
		for _, f := range c.files {
			set = append(set, files[f])
		}
		if err := ranks[c.rank].LoadShards(readers(set...)...); err != nil {
			t.Errorf("rank %d from files %v: %v", c.rank, c.files, err)
		}
	}
	// Without a file that holds part of the span: refused.
	if err := ranks[1].LoadShards(readers(files[0], files[2], files[4])...); !invalidFile(err) {
		t.Errorf("rank 1 without [48, 64): %v, want ErrState, not ErrMismatch", err)
	}
}

// TestShardLoadAnyOrder: the files of a set load in any order, also when
// a rank's span of a parameter is empty (its file holds no element of
// it). Each file's header records its writer's rank, ranks and chunk
// size.
func TestShardLoadAnyOrder(t *testing.T) {
	newOpt := func(s Shard) *Optimizer[float32] {
		o := mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 16, Workers: 1, Shard: s})
		for _, name := range []string{"a", "b"} {
			if err := o.Add(name, make([]float32, 16), make([]float32, 16)); err != nil {
				t.Fatal(err)
			}
		}
		return o
	}
	var files [][]byte
	for r := range 2 {
		o := newOpt(Shard{Rank: r, Ranks: 2, Reducer: &stubReducer{}})
		if lo, hi, _ := o.ShardSpan([]string{"b", "a"}[r]); lo != hi {
			t.Fatalf("rank %d keeps [%d, %d) of the other rank's parameter", r, lo, hi)
		}
		var b bytes.Buffer
		if err := o.SaveShard(&b); err != nil {
			t.Fatal(err)
		}
		f := b.Bytes()
		le := binary.LittleEndian
		if le.Uint32(f[16:]) != uint32(r) || le.Uint32(f[20:]) != 2 || le.Uint64(f[24:]) != 16 {
			t.Fatalf("rank %d's header: rank %d, ranks %d, chunk %d", r, le.Uint32(f[16:]), le.Uint32(f[20:]), le.Uint64(f[24:]))
		}
		files = append(files, f)
	}
	for _, s := range []Shard{{}, {Rank: 0, Ranks: 2, Reducer: &stubReducer{}}, {Rank: 1, Ranks: 2, Reducer: &stubReducer{}}} {
		o := newOpt(s)
		for _, set := range [][][]byte{files, {files[1], files[0]}} {
			if err := o.LoadShards(readers(set...)...); err != nil {
				t.Errorf("%+v: %v", s, err)
			}
		}
	}
}
