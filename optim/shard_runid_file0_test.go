package optim

import (
	"bytes"
	"testing"
)

// singleProcessShard returns the shard file (SaveShard of an optimizer
// that is not sharded: run id 0) of m's parameters after one Step with the
// gradients of step s; frozen names parameters that do not step.
func singleProcessShard(tb testing.TB, m *testModel[float64], h Hyper, op Options, s int, frozen ...string) []byte {
	tb.Helper()
	o := mustNew[float64](tb, h, op)
	mc := m.clone()
	mc.register(tb, o, nil)
	for _, n := range frozen {
		if err := o.SetRequiresGrad(n, false); err != nil {
			tb.Fatal(err)
		}
	}
	mc.fillGrads(s)
	if _, err := o.Step(); err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	if err := o.SaveShard(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// TestShardRunIDFileID0: every rank loads two single-process shard files
// X and Y (file id 0) of the same step counts, which differ only in
// elements that some rank does not own (a rank owning nothing; a rank
// owning only a frozen parameter), with no Step between: every rank moves
// its id alike, so that the set saved after the next Step loads, and a set
// mixed from it and the files of a rollback to X is refused.
func TestShardRunIDFileID0(t *testing.T) {
	h := SGDConfig{LR: 0.5, Momentum: 0.9}
	op := Options{ChunkSize: 16}
	for _, c := range []struct {
		name   string
		sizes  []int
		ranks  int
		frozen []string
	}{
		{"rank owning nothing", []int{8}, 3, nil},
		{"rank owning a frozen parameter", []int{16, 16}, 2, []string{"ta0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newTestModel[float64](c.sizes)
			x := singleProcessShard(t, m, h, op, 0, c.frozen...)
			y := singleProcessShard(t, m, h, op, 7, c.frozen...)
			if bytes.Equal(x, y) {
				t.Fatal("X and Y are one file")
			}
			sr := newShardRun(t, m, h, nil, nil, op, c.ranks)
			for _, o := range sr.opts {
				for _, n := range c.frozen {
					if err := o.SetRequiresGrad(n, false); err != nil {
						t.Fatal(err)
					}
				}
			}
			t.Logf("bounds %v", sr.opts[0].ShardBounds())
			stepRanks(t, sr, 0) // the run gets its id
			loadAll := func(f []byte) {
				t.Helper()
				for r, o := range sr.opts {
					if err := o.LoadShards(bytes.NewReader(f)); err != nil {
						t.Fatalf("rank %d: %v", r, err)
					}
				}
			}
			loadAll(x)
			loadAll(y)                  // every rank: another state than X's
			for _, o := range sr.opts { // e.g. a schedule unfreezes them now
				for _, n := range c.frozen {
					if err := o.SetRequiresGrad(n, true); err != nil {
						t.Fatal(err)
					}
				}
			}
			stepRanks(t, sr, 1)
			sy := saveSet(t, sr)
			ids := func(set [][]byte) (out []uint64) {
				for _, f := range set {
					out = append(out, fileRunID(t, f))
				}
				return out
			}
			t.Logf("ids after X, Y, Step: %#x", ids(sy))
			fresh := func() *Optimizer[float64] {
				o := mustNew[float64](t, h, op)
				m.clone().register(t, o, nil)
				return o
			}
			if err := fresh().LoadShards(readers(sy...)...); err != nil {
				t.Errorf("the set every rank saved after the same loads and one Step is refused: %v", err)
			}
			// Roll back to X (another state on every rank), step, save.
			loadAll(x)
			stepRanks(t, sr, 1)
			sx := saveSet(t, sr)
			t.Logf("ids after X, Step: %#x", ids(sx))
			if c.frozen != nil && bytes.Equal(sx[0][40:len(sx[0])-8], sy[0][40:len(sy[0])-8]) {
				t.Fatal("rank 0's files of the two timelines hold one state")
			}
			// A set mixed from the two timelines (each file saved after
			// the same Steps, by its own rank): must be refused.
			for r := range sx {
				if c.frozen == nil && r != 1 {
					continue // ranks 0 and 2 own nothing: their files differ in the id only
				}
				mixed := make([][]byte, len(sx))
				copy(mixed, sx)
				mixed[r] = sy[r]
				if bytes.Equal(sx[r][40:len(sx[r])-8], sy[r][40:len(sy[r])-8]) {
					t.Fatalf("rank %d's files of the two timelines hold one state", r)
				}
				if err := fresh().LoadShards(readers(mixed...)...); err == nil {
					t.Errorf("a set of the rollback's files with rank %d's file from before it (id %#x) loads", r, fileRunID(t, sy[r]))
				}
			}
		})
	}
}

// TestShardRunIDWholeLoadThenShard: a sharded run loads a single
// process's whole state file X (Load: file id 0) and then, with no Step
// between, a single process's shard file Y of the same step counts whose
// state differs from X's only on the rank that owns every element: every
// rank moves its id alike, and the set saved after the next Step loads.
func TestShardRunIDWholeLoadThenShard(t *testing.T) {
	h := SGDConfig{LR: 0.5, Momentum: 0.9}
	op := Options{ChunkSize: 16}
	m := newTestModel[float64]([]int{8})
	whole := func(s int) []byte {
		o := mustNew[float64](t, h, op)
		mc := m.clone()
		mc.register(t, o, nil)
		mc.fillGrads(s)
		if _, err := o.Step(); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := o.Save(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	x := whole(0)
	y := singleProcessShard(t, m, h, op, 7)
	sr := newShardRun(t, m, h, nil, nil, op, 3)
	stepRanks(t, sr, 0)
	for r, o := range sr.opts {
		if err := o.Load(bytes.NewReader(x)); err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		if err := o.LoadShards(bytes.NewReader(y)); err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	stepRanks(t, sr, 1)
	set := saveSet(t, sr)
	o := mustNew[float64](t, h, op)
	m.clone().register(t, o, nil)
	if err := o.LoadShards(readers(set...)...); err != nil {
		t.Errorf("ids %#x %#x %#x: %v", fileRunID(t, set[0]), fileRunID(t, set[1]), fileRunID(t, set[2]), err)
	}
}

// TestShardRunIDThreeLoadsFileID0: every rank loads three single-process
// shard files X, Y, Z (file id 0, the same step counts) that differ only
// in elements ranks 0 and 2 do not own, with no Step between: no rank
// puts back an earlier id (Z is not a rank's own file of the state held
// before its last load), every rank moves on alike, and the set saved
// after the next Step loads.
func TestShardRunIDThreeLoadsFileID0(t *testing.T) {
	h := SGDConfig{LR: 0.5, Momentum: 0.9}
	op := Options{ChunkSize: 16}
	m := newTestModel[float64]([]int{8})
	x := singleProcessShard(t, m, h, op, 0)
	y := singleProcessShard(t, m, h, op, 7)
	z := singleProcessShard(t, m, h, op, 3)
	sr := newShardRun(t, m, h, nil, nil, op, 3)
	t.Logf("bounds %v", sr.opts[0].ShardBounds())
	stepRanks(t, sr, 0)
	for _, f := range [][]byte{x, y, z} {
		for r, o := range sr.opts {
			if err := o.LoadShards(bytes.NewReader(f)); err != nil {
				t.Fatalf("rank %d: %v", r, err)
			}
		}
	}
	stepRanks(t, sr, 1)
	set := saveSet(t, sr)
	t.Logf("ids %#x %#x %#x", fileRunID(t, set[0]), fileRunID(t, set[1]), fileRunID(t, set[2]))
	o := mustNew[float64](t, h, op)
	m.clone().register(t, o, nil)
	if err := o.LoadShards(readers(set...)...); err != nil {
		t.Errorf("the set every rank saved after the same loads and one Step is refused: %v", err)
	}
}
