// Package taskrun is one worker's share of a job's tasks in the worker
// pools of optim and solve: a contiguous run of task numbers that its owner
// takes from the front and other workers, once their own runs are empty,
// take from the back.
//
// A run is one word, gen<<(2·Bits) | lo<<Bits | hi (tasks lo … hi-1 of the
// job whose generation's low GenBits bits are gen), so a task is claimed by
// one compare-and-swap that also checks that it belongs to the claimant's
// job: a worker that comes late, after its job is over, cannot take a task
// of the next one. Each run has a cache line of its own, so an owner's
// claims stay on its core until someone steals.
package taskrun

import "sync/atomic"

const (
	// Bits is the width of a task number: a job has at most MaxTasks tasks.
	Bits     = 20
	MaxTasks = 1<<Bits - 1
	// GenBits is the width of the generation kept in a run.
	GenBits = 64 - 2*Bits
	genMask = 1<<GenBits - 1
)

// Run is one worker's share of a job. The zero value is an empty run.
type Run struct {
	word atomic.Uint64
	_    [56]byte
}

// Set makes r hold tasks lo … hi-1 (0 ≤ lo ≤ hi ≤ MaxTasks) of the job of
// generation gen. It must not race with Take of the same job.
func (r *Run) Set(gen uint32, lo, hi int) {
	r.word.Store(uint64(gen)&genMask<<(2*Bits) | uint64(lo)<<Bits | uint64(hi))
}

// Take claims the task at the front of r (or, with back, at its back) for
// the job of generation gen; ok is false when r holds no task of that job.
func (r *Run) Take(gen uint32, back bool) (task int, ok bool) {
	g := uint64(gen) & genMask
	for {
		w := r.word.Load()
		lo, hi := (w>>Bits)&MaxTasks, w&MaxTasks
		if w>>(2*Bits) != g || lo >= hi {
			return 0, false
		}
		t := lo
		if back {
			hi--
			t = hi
		} else {
			lo++
		}
		if r.word.CompareAndSwap(w, g<<(2*Bits)|lo<<Bits|hi) {
			return int(t), true
		}
	}
}

// SameGen reports whether generations a and b look the same to a run (their
// low GenBits bits are equal); a pool skips a generation that would look
// like "none" or like the previous one.
func SameGen(a, b uint32) bool { return (a^b)&genMask == 0 }
