package optim

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"sort"
)

// Shard declares an optimizer to be one rank's part of a step sharded
// across Ranks processes (ZeRO stage 1): Options.Shard. The zero value
// shards nothing.
//
// In data-parallel training every process holds all the parameters and
// computes a gradient on its own part of the batch. With Options.Shard,
// an optimizer is one rank's part of the step: it keeps the state of, and
// steps, only the chunks its rank owns. A step then goes (the caller runs
// the collectives; adapters/mpi has a helper that does):
//
//  1. reduce-scatter the gradients, so that each rank holds the sum of
//     every rank's gradient on the elements it owns (the other elements
//     of its gradients are never read);
//  2. Step, which updates the owned elements of the parameters and their
//     state;
//  3. all-gather the parameters, each rank contributing its owned
//     elements.
//
// The chunks are those of the step's plan (plan.go): each parameter, in
// registration order, cut at multiples of Options.ChunkSize. Laid end to
// end they form one flat list of W elements, chunk j starting at flat
// offset s_j with w_j elements. Chunk j belongs to rank
//
//	r_j = ⌊Ranks·(2·s_j + w_j) / (2·W)⌋
//
// (the rank whose equal share of [0, W) holds the chunk's midpoint). So
// every rank owns one contiguous run of chunks (possibly none), the runs
// follow the rank order, and each rank owns W/Ranks elements give or take
// one chunk: the assignment is balanced by bytes (every element has the
// same size; the state bytes follow when every group keeps the same
// buffers). It depends on the parameters' lengths, ChunkSize and Ranks
// only; [ShardBounds] computes it, and rank r owns the flat elements
// [b[r], b[r+1]) of the parameters laid end to end. Within one parameter
// a rank owns one contiguous range of elements (its span), which begins
// and ends on chunk boundaries.
//
// Since the chunks, and so the assignment, are fixed by the lengths, a
// rank's state is only the state of its span of each parameter, and a set
// of shard files (SaveShard) can be loaded into any number of ranks: each
// takes the elements of its own spans from whichever files hold them
// (LoadShards).
//
// Every rank makes the same calls in the same order (Add, SetGroup,
// SetRequiresGrad, SetNoGrad, SetLossScale, ClipGradNorm, Step, …), with
// the same Options (ChunkSize, NonFinite, LossScaler: they decide the
// chunks and the exchanges): the hyperparameters, step counts and
// per-parameter scalars (NAdam's mu_product) of every parameter are kept
// on every rank and advance alike. Step, ClipGradNorm and GradNorm are
// collective (each may call the Reducer: GradNorm and ClipGradNorm for the
// norm, Step for the non-finite check and a reducing rule's sums, and the
// first Step once more, before either, for the run id that the shard files
// carry: shard_state.go): a rank
// that calls GradNorm alone, to log it say, pairs its exchange with another rank's Step, and the
// ranks diverge or wait for ever. Little here checks that the ranks
// agree; adapters/mpi's DataParallel compares a fingerprint of the
// parameters, options and settings before each step. ClipGradNorm's
// maxNorm, which is given between that check and the step, travels with
// the norm's exchange (one entry per rank) and is compared there: where
// the ranks passed different values, ClipGradNorm returns an error
// wrapping ErrInvalid on every rank and scales nothing (each rank would
// otherwise scale its own chunks by its own factor). Step's first exchange
// (the non-finite check, or under Propagate a reducing rule's sums)
// carries such an entry too, so that a closed rank, which takes part in
// these exchanges with a NaN entry, gives the others an error wrapping
// ErrInvalid instead of leaving them waiting. LoadShards is local
// too: each rank checks the files it reads, and a rank whose load fails
// while another's succeeds must not step on (agree on the outcome, as
// DataParallel's LoadCheckpoint does, or stop).
// The element-wise update of an owned chunk is the single-process update
// of that chunk, bit for bit, by construction: the same kernel on the same
// elements with the same coefficient block. What needs the other ranks is
// a result over chunks: the global gradient norm (ClipGradNorm, GradNorm),
// the non-finite check (SkipStep, ErrorOnNonFinite) and a rule's
// per-parameter sums (LAMB's ‖p‖ and ‖r‖, whose parameters may span
// several ranks). For each, a rank computes the per-chunk values of its
// own chunks (sums of squares, non-finite flags, maxima, a reducing rule's
// sums), and one Reducer.AllReduceSum of a vector with one entry per chunk
// of the whole plan, in which a rank sets only its own entries (the others
// are 0), gives every rank every chunk's value. Each entry is non-zero on
// one rank at most, so the sum is exact in any order of addition. Every
// rank then adds the chunk values exactly as a single process does (per
// parameter in chunk order, then over the parameters in registration
// order), and so gets the single-process norm, flag, first non-finite
// parameter and trust ratios bit for bit. Adding one partial sum per rank
// instead would not: a parameter's chunks may lie on two ranks, and the
// single-process sum of the chunk sums is grouped per parameter first.
//
// Steps are therefore bit-identical to a single process that steps the
// same summed gradients with the same ChunkSize, for any number of ranks.
// (The reduce-scatter that sums the gradients is the caller's: MPI may add
// the ranks' gradients in any order, which can change the sums' last bits
// between runs with different numbers of processes. It is the gradients,
// not the optimizer, that may differ.)
//
// The gradient passes of a shard (ClipGradNorm's scaling, UnscaleGrads)
// touch its own chunks only: the other elements of its gradients are not
// the summed gradients and no step reads them. ZeroGrad clears the whole
// gradients. Adding a parameter reassigns the chunks, so a sharded
// optimizer refuses Add once a parameter has stepped.
//
// An error of the Reducer is returned, wrapped. From the non-finite check
// and the norm it leaves everything unchanged; from the exchange of a
// two-pass rule's sums (LAMB) it comes after the first pass has updated
// this rank's moments, and the shard must then be restored from a
// checkpoint (a failed collective usually ends an MPI job anyway).
//
// Rules whose state is not element-wise cannot be sharded this way and are
// refused by New: a rule that cuts its chunks itself or keeps buffers
// shaped by the tensor's rows and columns (Adafactor's factored second
// moment, a sum over every row of a column: it would need an exchange of
// vectors per parameter, not of one value per chunk).
type Shard struct {
	// Rank is this process's rank, 0 ≤ Rank < Ranks.
	Rank int
	// Ranks is the number of processes; 0 turns sharding off. Ranks = 1
	// owns every chunk (no exchange) but saves in the shard format.
	Ranks int
	// Reducer sums the per-chunk values across the ranks. It may be nil
	// only when Ranks = 1.
	Reducer Reducer
}

// MaxRanks is the largest Shard.Ranks accepted.
const MaxRanks = 1 << 20

// Reducer is what a shard needs of the other ranks: the caller implements
// it over its collective library (adapters/mpi does, over MPI_Allreduce);
// optim itself needs none.
type Reducer interface {
	// AllReduceSum replaces every element of x, on every rank, by the sum
	// over the ranks of that element. Every rank calls it at the same
	// point with a slice of the same length. The optimizer passes vectors in which every
	// element is non-zero on one rank at most, so that the sum is exact
	// in any order of addition (x + 0 = x; a -0 may become +0, on which
	// nothing depends): MPI_Allreduce with MPI_SUM on MPI_DOUBLE is one.
	// It runs inside the optimizer's Step, GradNorm and ClipGradNorm, and
	// may not change that optimizer: the calls that would (Step, Add,
	// SetGroup, Load, Close, …) and SaveShard return ErrInvalid from it,
	// and ZeroGrad does nothing.
	AllReduceSum(x []float64) error
}

// shard is the sharding state of an optimizer.
type shard struct {
	rank, ranks int
	red         Reducer
	// bounds[r] is the flat offset of rank r's first element (bounds has
	// ranks+1 entries); spans[i] is this rank's range of parameter i.
	bounds []int
	spans  [][2]int
	// first and last delimit this rank's pieces in o.pieces (shardPlan).
	first, last int
	// buf is the exchange vector.
	buf []float64
	// run is the id of this run of the ranks (runID): rank 0's random
	// number, the same on every rank, drawn at the first Step; 0 before.
	// file is the id the shard files carry: run once a Step has changed
	// the state, the loaded files' after LoadShards over several ranks
	// (their state is this state until a Step changes it), 0 before
	// either, after a Load of a whole state file and on one rank.
	run, file uint64
	// back is the run id held before the last load since the last Step
	// that changed the state, and the checksum of the shard file of the
	// state held then; see loaded.
	back struct {
		ok       bool
		run, sum uint64
	}
}

// check validates the Shard options.
func (s Shard) check() error {
	switch {
	case s.Ranks == 0 && s.Rank == 0 && s.Reducer == nil:
		return nil
	case s.Ranks < 1 || s.Ranks > MaxRanks:
		return fmt.Errorf("%w: Shard.Ranks = %d, want 1 to %d (0 to shard nothing)", ErrInvalid, s.Ranks, MaxRanks)
	case s.Rank < 0 || s.Rank >= s.Ranks:
		return fmt.Errorf("%w: Shard.Rank = %d, want 0 to Ranks-1 = %d", ErrInvalid, s.Rank, s.Ranks-1)
	case s.Reducer == nil && s.Ranks > 1:
		return fmt.Errorf("%w: Shard.Reducer is nil with Ranks = %d", ErrInvalid, s.Ranks)
	}
	return nil
}

// newShard returns the sharding state of an optimizer of rule h with the
// resolved options s, nil when s shards nothing, or an error wrapping
// ErrInvalid when h's rule cannot be sharded.
func newShard(h Hyper, s Shard) (*shard, error) {
	if s.Ranks == 0 {
		return nil, nil
	}
	if err := shardable(h); err != nil {
		return nil, err
	}
	return &shard{rank: s.Rank, ranks: s.Ranks, red: s.Reducer}, nil
}

// shardable returns an error unless the state of rule h is element-wise:
// as long as the parameter, each element's state updated from that
// element alone (and, for a reducing rule, per-chunk sums). The two
// interfaces below are those of rules whose chunks or buffers follow the
// tensor's shape (Adafactor's rows and factored moments).
func shardable(h Hyper) error {
	type cutsItself interface {
		cuts(shape []int, n, c int, f func(lo, hi int))
	}
	type shapedBuffers interface {
		bufferLen(k int, shape []int) int
	}
	_, cut := h.(cutsItself)
	_, shaped := h.(shapedBuffers)
	if cut || shaped {
		return fmt.Errorf("%w: %v cannot be sharded: its state is not element-wise (it follows the tensor's rows and columns), so a rank's chunks do not hold their own state", ErrInvalid, h.Kind())
	}
	return nil
}

// ShardBounds returns the assignment of the chunks of parameters of the
// given lengths (in registration order, cut into chunks of chunkSize
// elements) to ranks ranks: rank r owns the flat elements [b[r], b[r+1])
// of the parameters laid end to end (b[0] = 0, b[ranks] = the total), by
// the rule in [Shard]'s documentation. chunkSize 0 selects
// DefaultChunkSize.
func ShardBounds(lengths []int, chunkSize, ranks int) ([]int, error) {
	switch {
	case chunkSize == 0:
		chunkSize = DefaultChunkSize
	case chunkSize < 0 || chunkSize%16 != 0:
		return nil, fmt.Errorf("%w: chunk size %d, want a positive multiple of 16", ErrInvalid, chunkSize)
	}
	if ranks < 1 || ranks > MaxRanks {
		return nil, fmt.Errorf("%w: ranks = %d, want 1 to %d", ErrInvalid, ranks, MaxRanks)
	}
	total := 0
	for i, n := range lengths {
		if n < 0 {
			return nil, fmt.Errorf("%w: length %d of parameter %d", ErrInvalid, n, i)
		}
		if total += n; total < 0 {
			return nil, fmt.Errorf("%w: the lengths add up to more than an int holds", ErrLength)
		}
	}
	return shardBounds(lengths, chunkSize, ranks, total), nil
}

// shardBounds is ShardBounds for valid arguments whose lengths add up to
// total. A chunk of w elements starting at flat element s goes to rank
// r(s) = ⌊ranks·(2s + w) / (2·total)⌋, which never falls from one chunk to
// the next (2s + w grows: the next chunk starts c after s, and w ≤ c), so
// b[r] is the start of the first chunk whose rank is r or more: found by a
// binary search over a parameter's chunks for each rank whose first chunk
// lies in it, in O((len(lengths) + ranks)·log(chunks)) steps however long
// the parameters are.
func shardBounds(lengths []int, c, ranks, total int) []int {
	b := make([]int, ranks+1)
	b[ranks] = total
	next := 1 // the next rank whose first element is not yet known
	off := 0
	for _, n := range lengths {
		chunks := n / c
		if n%c != 0 {
			chunks++
		}
		// rankAt is r of chunk k of this parameter: 2s + w < 2·total ≤
		// 2⁶⁴, and the 128-bit quotient is below ranks.
		rankAt := func(k int) int {
			lo := k * c
			s, w := off+lo, min(c, n-lo)
			hi, l := bits.Mul64(uint64(ranks), 2*uint64(s)+uint64(w))
			r, _ := bits.Div64(hi, l, 2*uint64(total))
			return int(r)
		}
		for next < ranks && chunks > 0 && rankAt(chunks-1) >= next {
			k := sort.Search(chunks, func(k int) bool { return rankAt(k) >= next })
			s, r := off+k*c, rankAt(k)
			for ; next <= r; next++ {
				b[next] = s
			}
		}
		off += n
	}
	for ; next < ranks; next++ {
		b[next] = total
	}
	return b
}

// shardAssign computes this rank's bounds and the span of every
// parameter, and sets each parameter's state offset (layout, first).
func (o *Optimizer[T]) shardAssign() {
	s := o.shard
	lengths := make([]int, len(o.params))
	total := 0
	for i := range o.params {
		lengths[i] = len(o.params[i].data)
		total += lengths[i]
	}
	s.bounds = shardBounds(lengths, o.opt.ChunkSize, s.ranks, total)
	lo, hi := s.bounds[s.rank], s.bounds[s.rank+1]
	s.spans = s.spans[:0]
	off := 0
	for i := range o.params {
		n := lengths[i]
		a := min(max(lo-off, 0), n)
		b := max(min(hi-off, n), a)
		s.spans = append(s.spans, [2]int{a, b})
		o.params[i].soff = a
		off += n
	}
}

// stateSpan returns the range of parameter i whose state this optimizer
// keeps: [0, len) unless it is sharded.
func (o *Optimizer[T]) stateSpan(i int) (lo, hi int) {
	if o.shard == nil {
		return 0, o.params[i].len()
	}
	sp := o.shard.spans[i]
	return sp[0], sp[1]
}

// shardPlan restricts the plan to this rank's pieces (prepare, after
// plan): every job then runs on them alone. The pieces themselves, and
// the per-piece arrays, stay those of the whole plan, so that the
// exchange fills in the other ranks' entries.
func (o *Optimizer[T]) shardPlan() {
	s := o.shard
	lo, hi := s.bounds[s.rank], s.bounds[s.rank+1]
	starts := make([]int, len(o.params)) // flat offset of each parameter
	for i := 1; i < len(o.params); i++ {
		starts[i] = starts[i-1] + len(o.params[i-1].data)
	}
	s.first, s.last = len(o.pieces), len(o.pieces)
	for j, pc := range o.pieces {
		at := starts[pc.param] + pc.lo
		if at >= lo && s.first == len(o.pieces) {
			s.first = j
		}
		if at >= hi {
			s.last = j
			break
		}
	}
	s.last = max(s.last, s.first)
	// Pack the owned pieces into tasks as plan packs them all.
	c := o.opt.ChunkSize
	o.tasks = append(o.tasks[:0], s.first)
	o.total = 0
	cur := 0
	for j := s.first; j < s.last; j++ {
		pc := o.pieces[j]
		n := pc.hi - pc.lo
		if sp := s.spans[pc.param]; pc.lo < sp[0] || pc.hi > sp[1] {
			panic(fmt.Sprintf("optim: internal error: piece [%d, %d) of parameter %q is outside the span [%d, %d)", pc.lo, pc.hi, o.params[pc.param].name, sp[0], sp[1]))
		}
		if cur > 0 && (o.opt.NoBatch || cur+n > c) {
			o.tasks = append(o.tasks, j)
			cur = 0
		}
		cur += n
		o.total += n
	}
	if cur > 0 {
		o.tasks = append(o.tasks, s.last)
	}
	need := max(len(o.pieces)*max(2, maxSums), 2*len(o.pieces)+s.ranks)
	if cap(s.buf) < need {
		s.buf = make([]float64, need)
	}
}

// What an exchange carries: the per-piece non-finite flags, sums of
// squares (or maxima), and a reducing rule's sums; exArg adds one entry
// per rank, each rank's clipArg (ClipGradNorm's maxNorm, argGradNorm or
// argStep; NaN for a closed rank), which the ranks must agree on.
const (
	exBad = 1 << iota
	exSum
	exRed
	exArg
)

// argCall describes a rank's entry in the exchange in which the ranks
// compare their calls (exArg).
func argCall(v float64) string {
	switch {
	case v == argGradNorm:
		return "GradNorm"
	case v == argStep:
		return "Step"
	case v != v:
		return "a closed optimizer, or an invalid maxNorm"
	case v == -1:
		return "ClipGradNorm(0)"
	}
	return fmt.Sprintf("ClipGradNorm(%v)", v)
}

// exchange gives every rank the per-piece values of every other rank's
// pieces (see the comment at the top of this file): a no-op unless the
// optimizer is sharded over several ranks. On an error from the Reducer
// the per-piece values are undefined.
func (o *Optimizer[T]) exchange(what int) error {
	s := o.shard
	if s == nil || s.ranks == 1 {
		return nil
	}
	n := len(o.pieces)
	if n == 0 {
		return nil
	}
	segs := 0
	if what&exSum != 0 {
		segs++
	}
	if what&exBad != 0 {
		segs++
	}
	if what&exRed != 0 {
		segs += maxSums
	}
	args := 0
	if what&exArg != 0 {
		args = s.ranks
	}
	x := s.buf[:segs*n+args]
	clear(x)
	if args > 0 {
		// Never 0 (maxNorm ≥ 0: -1 stands for ±0), so that a 0 can
		// only be an entry no rank wrote: a test's Reducer that stands
		// for ranks contributing zeros.
		x[segs*n+s.rank] = o.clipArg
		if o.clipArg == 0 {
			x[segs*n+s.rank] = -1
		}
	}
	seg := 0
	if what&exSum != 0 {
		copy(x[s.first:s.last], o.pieceSum[s.first:s.last])
		seg++
	}
	if what&exBad != 0 {
		y := x[seg*n:]
		for j := s.first; j < s.last; j++ {
			if o.pieceBad[j] {
				y[j] = 1
			}
		}
		seg++
	}
	if what&exRed != 0 {
		for k := range maxSums {
			y := x[(seg+k)*n:]
			for j := s.first; j < s.last; j++ {
				y[j] = o.pieceRed[j][k]
			}
		}
	}
	if err := o.reduce(x); err != nil {
		return err
	}
	if args > 0 {
		a := x[segs*n:]
		first := s.rank
		for r, v := range a {
			if v == 0 {
				continue
			}
			if v != a[first] {
				return fmt.Errorf("%w: shard %d of %d: the ranks' calls differ (%s on rank %d, %s on rank %d): every rank makes the same call, ClipGradNorm with the same maxNorm", ErrInvalid, s.rank, s.ranks, argCall(a[first]), first, argCall(v), r)
			}
			first = min(first, r)
		}
	}
	seg = 0
	if what&exSum != 0 {
		copy(o.pieceSum, x[:n])
		seg++
	}
	if what&exBad != 0 {
		for j, v := range x[seg*n : (seg+1)*n] {
			o.pieceBad[j] = v != 0
		}
		seg++
	}
	if what&exRed != 0 {
		for k := range maxSums {
			for j, v := range x[(seg+k)*n : (seg+k+1)*n] {
				o.pieceRed[j][k] = v
			}
		}
	}
	return nil
}

// reduce runs the Reducer on x, with the calls that would change the
// optimizer refused while it runs (errInReducer), and wraps its error.
func (o *Optimizer[T]) reduce(x []float64) error {
	s := o.shard
	o.inReducer = true
	defer func() { o.inReducer = false }()
	if err := s.red.AllReduceSum(x); err != nil {
		return fmt.Errorf("optim: shard %d of %d: Reducer.AllReduceSum: %w", s.rank, s.ranks, err)
	}
	return nil
}

// maxRunID bounds the run ids: float64 holds every integer below 2⁵³, so
// the exchange carries one exactly.
const maxRunID = 1 << 52

// runID gives a shard of several ranks its run id at its first Step: rank
// 0 draws a random integer in [1, 2⁵²) and one AllReduceSum of one value
// (0 on the other ranks, so that the sum is exact) gives it to every rank.
// The shard files carry it, so that LoadShards can tell the files of two
// runs saved after the same step (their headers agree) from one set. It
// is a no-op on a later Step and on an optimizer that is not sharded over
// several ranks (its files each hold every element or none of another
// rank's, so that a mixed set has an element twice or none).
func (o *Optimizer[T]) runID() error {
	s := o.shard
	if s == nil || s.ranks == 1 || s.run != 0 {
		return nil
	}
	x := make([]float64, 1) // once per optimizer
	if s.rank == 0 {
		x[0] = float64(1 + rand.Uint64N(maxRunID-1))
	}
	if err := o.reduce(x); err != nil {
		return err
	}
	if v := x[0]; !(v >= 1 && v < maxRunID && v == math.Trunc(v)) {
		return fmt.Errorf("%w: shard %d of %d: Reducer.AllReduceSum summed rank 0's run id and zeros to %v, want an integer in [1, 2⁵²): the Reducer does not sum over every rank", ErrInvalid, s.rank, s.ranks, v)
	}
	s.run = uint64(x[0])
	return nil
}

// loaded moves the run id on after a Load or LoadShards on a shard of
// several ranks that has one: the same step counts can now be reached
// again by another state (a rollback to an earlier checkpoint, a
// different batch), and the files saved after that must not pair with the
// files saved after the same step before the load. Every rank that loads
// a set decides alike, without an exchange (a load is local), so that a
// rank that did not load writes files of another id, and LoadShards
// refuses a set mixed across the load (ErrState). The id stays in [1, 2⁵²)
// and differs from the one before.
//
// The states are compared by the checksums of the shard files SaveShard
// writes of them (CRC-64 of every byte: this rank's state, the step counts
// and the file id; never the file id alone, which is 0 for every state not
// yet stepped): prev of the state held before the load, after of the
// state loaded (afterOK false where none is known: a whole state file's
// Load, which always moves the id on). A load that leaves the state as it
// was (after == prev: a rank's own file of the state it holds, or file 0
// and files of no element on a rank that owns none) leaves the id,
// whichever and however many files it read, so that every rank of a set
// loaded just after it was saved keeps one id; only where the state has a
// file id (s.file, set to the loaded files' before this call), since the
// states of one file id and step counts are one state on every rank (one
// point of one run), and the ranks whose own parts of two states of file
// id 0 (single-process files, states loaded from whole state files) agree
// would otherwise keep their ids where the others move theirs. A load
// that brings back the state held before the last load since the last
// Step puts back the id held then: one shard file (single) that is this
// rank's file of that state (its checksum sum is that state's: the same
// bytes, this rank's header among them), as a process undoing its load
// because another's failed (fusempi's LoadCheckpoint) loads, so that it
// writes files of one id with the processes whose loads failed, which
// kept theirs; or, where the state has a file id, any files that leave
// that state (after == its checksum), so that the ranks reading their own
// file and those reading others (owning none) decide alike. (Compared by
// the state after the load under file id 0, ranks whose own parts of two
// states agree would put the id back where the others move theirs.)
func (s *shard) loaded(prev uint64, prevOK bool, after uint64, afterOK, single bool, sum uint64) {
	if s == nil || s.ranks == 1 || s.run == 0 {
		return
	}
	if s.back.ok && ((single && sum == s.back.sum) || (afterOK && after == s.back.sum && s.file != 0)) {
		s.run, s.back.ok = s.back.run, false
		return
	}
	if afterOK && prevOK && after == prev && s.file != 0 {
		return // the state it held: no other timeline starts here
	}
	s.back.ok, s.back.run, s.back.sum = prevOK, s.run, prev
	// splitmix64's finaliser of the id and a constant, folded into the
	// ids' range; the rare collisions with the old id or 0 step once more.
	x := s.run
	for {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		if v := z % maxRunID; v != 0 && v != s.run {
			s.run = v
			return
		}
	}
}

// heldSum returns the checksum of the shard file SaveShard would write of
// the state held now, for loaded; ok is false where the optimizer is not
// sharded over several ranks with a run id, or SaveShard refuses it.
func (o *Optimizer[T]) heldSum() (sum uint64, ok bool) {
	if s := o.shard; s == nil || s.ranks == 1 || s.run == 0 {
		return 0, false
	}
	var w tailWriter
	if err := o.SaveShard(&w); err != nil || w.n < 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(w.tail[:]), true
}

// tailWriter keeps the last 8 bytes written to it (a file's checksum).
type tailWriter struct {
	tail [8]byte
	n    int
}

func (w *tailWriter) Write(b []byte) (int, error) {
	if len(b) >= 8 {
		copy(w.tail[:], b[len(b)-8:])
	} else {
		copy(w.tail[:], w.tail[len(b):])
		copy(w.tail[8-len(b):], b)
	}
	w.n += len(b)
	return len(b), nil
}

// shardFixed returns an error when a parameter may not be added: the
// optimizer is sharded and a parameter has stepped, so that a new
// assignment would move state that lives on other ranks.
func (o *Optimizer[T]) shardFixed() error {
	if o.shard == nil {
		return nil
	}
	if o.clipped {
		// ClipGradNorm scaled this rank's chunks of the old assignment.
		return fmt.Errorf("%w: a sharded optimizer takes no new parameter between ClipGradNorm and Step: the assignment of chunks to ranks would change, and this rank would step chunks it did not clip", ErrInvalid)
	}
	for i := range o.params {
		if o.params[i].step > 0 {
			return fmt.Errorf("%w: a sharded optimizer takes no new parameter after a step (parameter %q has stepped): the assignment of chunks to ranks would change, and the state of the chunks that move lives on other ranks", ErrInvalid, o.params[i].name)
		}
	}
	return nil
}

// ShardBounds returns the assignment of the registered parameters' chunks
// to the ranks (see the package function [ShardBounds]): rank r owns the
// flat elements [b[r], b[r+1]) of the parameters laid end to end in
// registration order. An optimizer that is not sharded returns [0, total].
func (o *Optimizer[T]) ShardBounds() []int {
	if o.shard == nil {
		total := 0
		for i := range o.params {
			total += o.params[i].len() // a 16-bit-state parameter has no data
		}
		return []int{0, total}
	}
	o.prepare()
	return append([]int(nil), o.shard.bounds...)
}

// ShardSpan returns the range [lo, hi) of parameter name whose state this
// rank keeps and whose elements its Step updates: [0, len) when the
// optimizer is not sharded, possibly empty when it is.
func (o *Optimizer[T]) ShardSpan(name string) (lo, hi int, err error) {
	i, ok := o.names[name]
	if !ok {
		return 0, 0, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	if o.shard != nil {
		o.prepare()
	}
	lo, hi = o.stateSpan(i)
	return lo, hi, nil
}

// ShardState returns a copy of this rank's part of the state buffer buf
// (BufExpAvg, …) of parameter name, and the offset in the parameter of its
// first element: the elements [lo, lo+len(vals)) (ShardSpan). Without
// sharding it is State, with lo = 0.
func (o *Optimizer[T]) ShardState(name, buf string) (lo int, vals []T, err error) {
	i, ok := o.names[name]
	if !ok {
		return 0, nil, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	if o.shard == nil {
		vals, err = o.State(name, buf)
		return 0, vals, err
	}
	o.prepare()
	p := &o.params[i]
	lo, hi := o.stateSpan(i)
	for k, b := range o.groups[p.group].buffers() {
		if b == buf {
			out := make([]T, hi-lo)
			if p.buf[k] == nil { // before the first step
				fillInitial(o.groups[p.group], k, out)
			}
			copy(out, p.buf[k])
			return lo, out, nil
		}
	}
	return 0, nil, fmt.Errorf("%w: parameter %q has no state %q", ErrInvalid, name, buf)
}

// partialState returns an error when parameter i's state is split across
// ranks, so that State cannot return it whole.
func (o *Optimizer[T]) partialState(i int) error {
	if o.shard == nil {
		return nil
	}
	o.prepare()
	if lo, hi := o.stateSpan(i); lo != 0 || hi != len(o.params[i].data) {
		return fmt.Errorf("%w: parameter %q: rank %d of %d keeps the state of elements [%d, %d) only (ShardState)", ErrInvalid, o.params[i].name, o.shard.rank, o.shard.ranks, lo, hi)
	}
	return nil
}

// StateBytes returns the bytes of state buffers the optimizer keeps, with
// LAMB's scratch (DirectionInScratch): those of its spans when it is
// sharded (without the slab's alignment padding).
// It lays the state out first if no step has.
func (o *Optimizer[T]) StateBytes() int64 {
	o.prepare()
	var n int64
	for i := range o.params {
		p := &o.params[i]
		for _, b := range p.buf {
			n += int64(len(b)) * int64(o.ops.size)
		}
		if p.half != nil {
			for _, b := range p.half.buf {
				n += int64(len(b)) * 2
			}
			if p.half.held {
				n += int64(len(p.data)) * 4
			}
		}
	}
	return n
}
