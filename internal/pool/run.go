package pool

import "sync/atomic"

// A run is one worker's share of a job's tasks: a contiguous run of task
// numbers that its owner takes from the front and other workers, once their
// own runs are empty, take from the back.
//
// It is one word, gen<<(2·bits) | lo<<bits | hi (tasks lo … hi-1 of the job
// whose generation's low genBits bits are gen), so a task is claimed by one
// compare-and-swap that also checks that it belongs to the claimant's job: a
// worker that comes late, after its job is over, cannot take a task of the
// next one. Each run has a cache line of its own, so an owner's claims stay
// on its core until someone steals.

const (
	// bits is the width of a task number: a job has at most MaxTasks tasks.
	bits = 20
	// MaxTasks is the most tasks a job's runs hold (Run divides larger
	// jobs into parts).
	MaxTasks = 1<<bits - 1
	// genBits is the width of the generation kept in a run.
	genBits = 64 - 2*bits
	genMask = 1<<genBits - 1
)

// run is one worker's share of a job. The zero value is an empty run.
type run struct {
	word atomic.Uint64
	_    [56]byte
}

// set makes r hold tasks lo … hi-1 (0 ≤ lo ≤ hi ≤ MaxTasks) of the job of
// generation gen. It must not race with take of the same job.
func (r *run) set(gen uint32, lo, hi int) {
	r.word.Store(uint64(gen)&genMask<<(2*bits) | uint64(lo)<<bits | uint64(hi))
}

// take claims the task at the front of r (or, with back, at its back) for
// the job of generation gen; ok is false when r holds no task of that job.
func (r *run) take(gen uint32, back bool) (task int, ok bool) {
	g := uint64(gen) & genMask
	for {
		w := r.word.Load()
		lo, hi := (w>>bits)&MaxTasks, w&MaxTasks
		if w>>(2*bits) != g || lo >= hi {
			return 0, false
		}
		t := lo
		if back {
			hi--
			t = hi
		} else {
			lo++
		}
		if r.word.CompareAndSwap(w, g<<(2*bits)|lo<<bits|hi) {
			return int(t), true
		}
	}
}

// drain claims every task left in r for the job of generation gen, none
// of which will run.
func (r *run) drain(gen uint32) {
	g := uint64(gen) & genMask
	for {
		w := r.word.Load()
		lo, hi := (w>>bits)&MaxTasks, w&MaxTasks
		if w>>(2*bits) != g || lo >= hi || r.word.CompareAndSwap(w, g<<(2*bits)|hi<<bits|hi) {
			return
		}
	}
}

// sameGen reports whether generations a and b look the same to a run (their
// low genBits bits are equal); the pool skips a generation that would look
// like "none".
func sameGen(a, b uint32) bool { return (a^b)&genMask == 0 }
