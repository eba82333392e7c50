package optim

import (
	"slices"
	"testing"
)

// TestShardRunIDKeptAcrossReads: a set loaded just after it was saved
// leaves every rank's state as it was, whichever files each rank reads
// (its own; file 0 and a file of no element on a rank that owns none; all
// of them): every rank keeps its run id, so that the set saved after the
// next Step is one run's and loads. A load of another state moves the id
// on every rank alike.
func TestShardRunIDKeptAcrossReads(t *testing.T) {
	op := Options{ChunkSize: 16}
	h := SGDConfig{LR: 0.5, Momentum: 0.9}
	for _, reads := range [][][]int{
		{{0}, {1}, {0, 2}}, // each the least it needs (fusempi's LoadCheckpoint)
		{{0, 1, 2}, {0, 1, 2}, {0, 1, 2}},
		{{0}, {0, 1, 2}, {2, 0}},
	} {
		sr := newShardRun(t, newTestModel[float64]([]int{8}), h, nil, nil, op, 3)
		if b := sr.opts[0].ShardBounds(); !slices.Equal(b, []int{0, 0, 8, 8}) {
			t.Fatalf("bounds %v, want [0 0 8 8]", b)
		}
		stepRanks(t, sr, 0)
		files := saveSet(t, sr)
		load := func(set [][]byte, reads [][]int) { t.Helper(); loadReads(t, sr, set, reads) }
		load(files, reads)
		stepRanks(t, sr, 1)
		next := saveSet(t, sr)
		for r := range next {
			if got, want := fileRunID(t, next[r]), fileRunID(t, next[0]); got != want {
				t.Fatalf("reads %v: after the load and a step, rank %d writes run id %#x, rank 0 %#x", reads, r, got, want)
			}
		}
		if fileRunID(t, next[0]) != fileRunID(t, files[0]) {
			t.Errorf("reads %v: a load of the state held moved the run id", reads)
		}
		// Back to the first set (another state): every rank moves on, alike.
		load(files, reads)
		stepRanks(t, sr, 2)
		third := saveSet(t, sr)
		for r := range third {
			if got := fileRunID(t, third[r]); got != fileRunID(t, third[0]) || got == fileRunID(t, files[0]) {
				t.Fatalf("reads %v: after a rollback and a step, rank %d writes run id %#x, rank 0 %#x, the rolled-back run %#x",
					reads, r, got, fileRunID(t, third[0]), fileRunID(t, files[0]))
			}
		}
		o := mustNew[float64](t, h, op)
		newTestModel[float64]([]int{8}).register(t, o, nil)
		for _, set := range [][][]byte{next, third} {
			if err := o.LoadShards(readers(set...)...); err != nil {
				t.Errorf("reads %v: %v", reads, err)
			}
		}
	}
}

// TestShardRunIDBackAcrossReads: the ranks hold state S (after a Step);
// every rank loads an earlier set P (another state: every id moves on),
// then, with no Step between, the set Q saved of S, each rank reading its
// own file, or file 0 and the file of no element (a rank owning none): every
// rank puts back the id it held at S, so that the set saved after the
// next Step is one run's and loads.
func TestShardRunIDBackAcrossReads(t *testing.T) {
	op := Options{ChunkSize: 16}
	h := SGDConfig{LR: 0.5, Momentum: 0.9}
	sr := newShardRun(t, newTestModel[float64]([]int{8}), h, nil, nil, op, 3)
	stepRanks(t, sr, 0)
	p := saveSet(t, sr)
	stepRanks(t, sr, 1)
	q := saveSet(t, sr)
	load := func(set [][]byte, reads [][]int) { t.Helper(); loadReads(t, sr, set, reads) }
	least := [][]int{{0}, {1}, {0, 2}}
	load(p, least)
	load(q, least)
	stepRanks(t, sr, 2)
	next := saveSet(t, sr)
	for r := range next {
		if got, want := fileRunID(t, next[r]), fileRunID(t, next[0]); got != want {
			t.Fatalf("rank %d writes run id %#x, rank 0 %#x", r, got, want)
		}
	}
	if fileRunID(t, next[0]) != fileRunID(t, q[0]) {
		t.Errorf("the id held at S was not put back: %#x, S's files %#x", fileRunID(t, next[0]), fileRunID(t, q[0]))
	}
	o := mustNew[float64](t, h, op)
	newTestModel[float64]([]int{8}).register(t, o, nil)
	if err := o.LoadShards(readers(next...)...); err != nil {
		t.Error(err)
	}
}

// loadReads loads into each rank r of sr the files reads[r] of set.
func loadReads[T Float](tb testing.TB, sr *shardRun[T], set [][]byte, reads [][]int) {
	tb.Helper()
	for r, o := range sr.opts {
		var rs [][]byte
		for _, f := range reads[r] {
			rs = append(rs, set[f])
		}
		if err := o.LoadShards(readers(rs...)...); err != nil {
			tb.Fatalf("rank %d reading %v: %v", r, reads[r], err)
		}
	}
}
