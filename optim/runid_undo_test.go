package optim

import (
	"bytes"
	"math"
	"testing"
)

// undoLoad is what fusempi's LoadCheckpoint does on a rank whose load
// succeeded where another's failed: save, load the set, load its own
// state back.
func undoLoad[T Float](tb testing.TB, o *Optimizer[T], set [][]byte) {
	tb.Helper()
	var before bytes.Buffer
	if err := o.SaveShard(&before); err != nil {
		tb.Fatal(err)
	}
	if err := o.LoadShards(readers(set...)...); err != nil {
		tb.Fatal(err)
	}
	if err := o.LoadShards(bytes.NewReader(before.Bytes())); err != nil {
		tb.Fatal(err)
	}
}

// TestRunIDUndoTwoLoadsThenUndo: every rank loads checkpoint C1 (a
// successful LoadCheckpoint), then, with no Step in between, a
// LoadCheckpoint of C2 fails on rank 1 and rank 0 undoes its load. Both
// ranks hold C1's state; after a Step their files must be one set.
func TestRunIDUndoTwoLoadsThenUndo(t *testing.T) {
	op := Options{ChunkSize: 64}
	m := newTestModel[float32](shardSizes)
	sr, c2 := backToC1(t, m, op)
	undoLoad(t, sr.opts[0], c2) // LoadCheckpoint(c2): rank 1 failed, rank 0 undoes
	stepRanks(t, sr, 3)
	after := saveSet(t, sr)
	a, b := fileRunID(t, after[0]), fileRunID(t, after[1])
	if a != b {
		t.Errorf("ranks holding one state write ids %#x and %#x", a, b)
	}
	o := mustNew[float32](t, DefaultAdam(), op)
	m.clone().register(t, o, nil)
	if err := o.LoadShards(readers(after...)...); err != nil {
		t.Errorf("the set of ranks that hold one state is refused: %v", err)
	}
}

// wholeFile returns a whole state file of an optimizer (not sharded) of
// m's parameters after steps with the gradients of the given steps.
func wholeFile(tb testing.TB, m *testModel[float32], steps ...int) []byte {
	tb.Helper()
	o := mustNew[float32](tb, DefaultAdam(), Options{ChunkSize: 64})
	mc := m.clone()
	mc.register(tb, o, nil)
	for _, s := range steps {
		mc.fillGrads(s)
		if _, err := o.Step(); err != nil {
			tb.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := o.Save(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// TestRunIDUndoWholeFiles: the ranks resume from a whole state
// file W (before their first Step: run id 0) and their first Step is
// skipped (an overflow under SkipStep): they hold W, with a run id and
// file id 0. Rank 0 then loads another whole state file W2 of the same
// step counts, twice. Its state is W2's, rank 1's W's: after a Step their
// files are of two timelines and must carry different ids, and a set
// mixed from them must be refused.
func TestRunIDUndoWholeFiles(t *testing.T) {
	op := Options{ChunkSize: 64, NonFinite: SkipStep}
	m := newTestModel[float32](shardSizes)
	w := wholeFile(t, m, 0, 1)
	w2 := wholeFile(t, m, 5, 6) // same step counts, another state
	sr := newShardRun(t, m, DefaultAdam(), nil, nil, op, 2)
	for _, o := range sr.opts {
		if err := o.Load(bytes.NewReader(w)); err != nil {
			t.Fatal(err)
		}
	}
	skippedStep(t, sr, 2, float32(math.NaN())) // the first: it draws the run id, steps nothing
	for range 2 {
		if err := sr.opts[0].Load(bytes.NewReader(w2)); err != nil {
			t.Fatal(err)
		}
	}
	stepRanks(t, sr, 3)
	set := saveSet(t, sr)
	a, b := fileRunID(t, set[0]), fileRunID(t, set[1])
	if a == b {
		t.Errorf("rank 0 (W2's timeline) and rank 1 (W's) write one run id %#x", a)
	}
	o := mustNew[float32](t, DefaultAdam(), op)
	m.clone().register(t, o, nil)
	if err := o.LoadShards(readers(set...)...); err == nil {
		t.Errorf("a set mixed from W2's timeline (rank 0's elements) and W's (rank 1's) at the same step loads")
	}
}

// TestRunIDUndoSkippedStepThenUndo: every rank loads C1, runs an iteration
// whose Step is skipped (an overflow under SkipStep: it steps nothing),
// then a LoadCheckpoint of C2 fails on rank 1 and rank 0 undoes its load.
// Both ranks hold C1's state; after a Step their files must be one set.
func TestRunIDUndoSkippedStepThenUndo(t *testing.T) {
	op := Options{ChunkSize: 64, NonFinite: SkipStep}
	sr, c2 := backToC1(t, newTestModel[float32](shardSizes), op)
	skippedStep(t, sr, 3, float32(math.Inf(1))) // an overflow
	undoLoad(t, sr.opts[0], c2)
	stepRanks(t, sr, 4)
	after := saveSet(t, sr)
	if a, b := fileRunID(t, after[0]), fileRunID(t, after[1]); a != b {
		t.Errorf("ranks holding one state write ids %#x and %#x", a, b)
	}
}

// skippedStep runs a Step on every rank (SkipStep) of the gradients of
// step s with the first element of each tensor set to bad: skipped.
func skippedStep(t *testing.T, sr *shardRun[float32], s int, bad float32) {
	t.Helper()
	for _, mr := range sr.models {
		mr.fillGrads(s)
		for k := range mr.grad {
			mr.grad[k][0] = bad
		}
	}
	if err := onRanks(len(sr.opts), func(r int) error {
		rep, err := sr.opts[r].Step()
		if err == nil && !rep.Skipped {
			t.Errorf("rank %d: the step was not skipped", r)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// backToC1 runs two ranks three steps, saving C1 after the first and C2
// after the second, and has every rank load C1 (a LoadCheckpoint that
// succeeds everywhere); it returns the run and C2.
func backToC1(t *testing.T, m *testModel[float32], op Options) (*shardRun[float32], [][]byte) {
	t.Helper()
	sr := newShardRun(t, m, DefaultAdam(), nil, nil, op, 2)
	stepRanks(t, sr, 0)
	c1 := saveSet(t, sr)
	stepRanks(t, sr, 1)
	c2 := saveSet(t, sr)
	stepRanks(t, sr, 2)
	for _, o := range sr.opts {
		if err := o.LoadShards(readers(c1...)...); err != nil {
			t.Fatal(err)
		}
	}
	return sr, c2
}
