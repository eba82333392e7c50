package optim

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"io"
	"math"
	"os"
	"slices"

	"github.com/fuseopt/fuseopt/kernels"
)

// The shard file: one rank's part of an optimizer's state (shard.go). It
// holds what a state file holds (state.go), but each parameter's buffers
// only over the range of elements [lo, hi) that the writer kept. Integers
// and floats are little-endian, strings as in the state file.
//
//	magic    [8]byte  "FUSEOPTZ"
//	version  u32      1
//	kind     u8       Kind
//	elem     u8       bytes per element: 4 (float32) or 8 (float64)
//	reserved u16      0
//	rank     u32      the writer's Shard.Rank (0 when not sharded)
//	ranks    u32      the writer's Shard.Ranks (1 when not sharded)
//	chunk    u64      the writer's ChunkSize
//	run      u64      the run id (version 2 only; see below)
//	groups   u32, then per group as in the state file (version 2)
//	params   u32, then per parameter, in registration order:
//	    name   str16
//	    group  u32
//	    rank   u8, then dims i64 × rank
//	    length i64
//	    step   i64
//	    nscal  u8, then per scalar: key str8, value f64 (NAdam's
//	           mu_product; 0 scalars for the other kinds)
//	    lo, hi i64    the elements whose state follows, 0 ≤ lo ≤ hi ≤ length
//	    nbuf   u8, then per buffer: key str8, hi-lo elements
//	crc      u64      CRC-64 (ECMA) of every byte above
//
// A set of shard files written by the ranks of one sharded run after the
// same step holds every element once. Since every rank keeps every
// parameter's hyperparameters, step count and scalars, every file holds
// them, and they agree. rank, ranks and chunk are for people: loading
// needs only the element ranges, so a set loads into any number of ranks
// and with any ChunkSize.
//
// The run id tells the sets of two runs apart. Files of two runs saved
// after the same step agree on every header, and a set mixed from them
// would load, each rank's elements from another run. A shard of several
// ranks gets an id at its first Step (rank 0's random integer in
// [1, 2⁵²), shared through the Reducer: shard.go), and its files carry it
// once a Step has changed its state; after LoadShards, and until a Step
// changes the state, they carry the loaded files' id (the state is
// theirs). A Load or LoadShards on a shard that has an id moves it on, the
// same way on every rank that loads (shard.go's loaded), so that a run
// rolled back to an earlier checkpoint, which reaches the same step counts
// again with another state, writes files that do not pair with the ones it
// wrote after those steps before; a load that leaves the rank's state as
// it was (of a file id other than 0), whichever files it read, leaves the
// id, and one of the state it held before its last load, with no Step
// since (undoing a load that failed on another rank), puts back that
// state's id (states told apart by the checksums of their shard files). LoadShards refuses a set whose files
// carry different ids (ErrState). The id is 0, matching only 0, in version 1 files, in the
// files of an optimizer that is not sharded over several ranks (each holds
// every element: mixed with another file, some element is held twice)
// and in those of one that has not stepped since New or since it loaded a
// whole state file. Two runs of one program from the same start therefore
// write files that differ in the 8 bytes of the id and in the checksum
// (every other byte is bit-exact).
const (
	shardMagic   = "FUSEOPTZ"
	shardVersion = 2
)

// SaveShard writes the state this optimizer keeps to w, in the shard file
// format: on a sharded optimizer its spans of every parameter's state
// (Save on a sharded optimizer is SaveShard), otherwise the whole state,
// as one file that a sharded optimizer of any number of ranks can load.
// A rule that cannot be sharded (see [Shard]) has no shard files, nor has
// an optimizer with 16-bit parameters (AddBF16, AddF16: the format records
// no 16-bit state or master; Save's does): the error wraps ErrInvalid.
func (o *Optimizer[T]) SaveShard(w io.Writer) error {
	if o.ops == nil {
		return errZeroOptimizer // (a closed optimizer saves)
	}
	if o.inReducer {
		return errInReducer
	}
	if w == nil {
		return fmt.Errorf("%w: SaveShard to a nil writer", ErrInvalid)
	}
	if err := shardable(o.groups[0]); err != nil {
		return err
	}
	if err := o.noHalfShards(); err != nil {
		return err
	}
	if o.shard != nil {
		o.prepare() // the spans
	}
	rank, ranks := 0, 1
	if o.shard != nil {
		rank, ranks = o.shard.rank, o.shard.ranks
	}
	e := encoder{w: bufio.NewWriterSize(w, 1<<16), h: crc64.New(crcTable)}
	e.bytes([]byte(shardMagic))
	e.u32(shardVersion)
	e.u8(uint8(o.kind))
	e.u8(uint8(o.ops.size))
	e.u16(0)
	e.u32(uint32(rank))
	e.u32(uint32(ranks))
	e.u64(uint64(o.opt.ChunkSize))
	var id uint64
	if o.shard != nil {
		id = o.shard.file
	}
	e.u64(id)
	e.u32(uint32(len(o.groups)))
	for _, g := range o.groups {
		names, vals := values(g)
		e.u8(uint8(len(names)))
		for i, n := range names {
			e.u8(uint8(len(n)))
			e.bytes([]byte(n))
			e.u64(math.Float64bits(vals[i]))
		}
	}
	scn := scalarNamesOf(o.groups[0])
	e.u32(uint32(len(o.params)))
	for i := range o.params {
		p := &o.params[i]
		writeParamHead(&e, p.name, p.group, p.shape, p.len(), p.step)
		e.u8(uint8(len(scn)))
		for k, name := range scn {
			e.u8(uint8(len(name)))
			e.bytes([]byte(name))
			e.u64(math.Float64bits(p.sc[k]))
		}
		lo, hi := o.stateSpan(i)
		e.u64(uint64(lo))
		e.u64(uint64(hi))
		bufs := savedBuffers(o.groups[p.group], p.shape, p.fresh, p.step) // a shardable rule: not shaped
		e.u8(uint8(len(bufs)))
		for k, name := range bufs {
			e.u8(uint8(len(name)))
			e.bytes([]byte(name))
			writeElems(&e, p.buf[k], hi-lo, T(o.groups[p.group].initial(k))) // nil before the first step
		}
	}
	return e.close()
}

// ShardHeader is what a shard file says about itself (see SaveShard) in
// its first and last bytes: its writer's rank of Ranks, ChunkSize and run
// id (0 in version-1 files and where the writer had none), and Sum, the
// CRC-64 of its contents stored in its last 8 bytes.
type ShardHeader struct {
	Rank, Ranks, ChunkSize int
	Run                    uint64
	Sum                    uint64
}

// ReadShardHeader reads the header and the stored checksum of the shard
// file of size bytes that r reads (its first 44 bytes at most and its last
// 8), for a loader that picks which files of a set to read whole: the file
// written by rank r of R with chunk size c holds the state of the flat
// elements [b[r], b[r+1]) of ShardBounds(lengths, c, R), and every file of
// one set carries the same Ranks, ChunkSize and Run; files of other
// contents carry other sums. Nothing is checked against the checksum, which
// only a read of the whole file (LoadShards) checks. Errors wrap ErrState:
// a file too short, not a shard file, of an unknown version, or a header
// no SaveShard writes.
func ReadShardHeader(r io.ReaderAt, size int64) (ShardHeader, error) {
	var b [shardTopMax]byte
	if size < 12+8 {
		return ShardHeader{}, fmt.Errorf("%w: a shard file of %d bytes", ErrState, size)
	}
	if _, err := r.ReadAt(b[:12], 0); err != nil {
		return ShardHeader{}, fmt.Errorf("%w: a shard file's header: %w", ErrState, err)
	}
	n, err := shardTopLen(b[:12])
	if err != nil {
		return ShardHeader{}, err
	}
	if size < int64(n)+8 {
		return ShardHeader{}, fmt.Errorf("%w: a shard file of %d bytes", ErrState, size)
	}
	if _, err := r.ReadAt(b[12:n], 12); err != nil {
		return ShardHeader{}, fmt.Errorf("%w: a shard file's header: %w", ErrState, err)
	}
	t, err := parseShardTop(b[:n])
	if err != nil {
		return ShardHeader{}, err
	}
	h := ShardHeader{Rank: int(t.rank), Ranks: int(t.ranks), ChunkSize: int(t.chunk), Run: t.run}
	if _, err := r.ReadAt(b[:8], size-8); err != nil {
		return ShardHeader{}, fmt.Errorf("%w: a shard file's checksum: %w", ErrState, err)
	}
	h.Sum = binary.LittleEndian.Uint64(b[:8])
	return h, nil
}

// shardTopMax is the length of a shard file's fixed header (to its group
// count) in the current version; version 1 has 36 bytes, without the run
// id.
const shardTopMax = 44

// shardTop is a shard file's fixed header, as SaveShard writes it.
type shardTop struct {
	kind        Kind
	elem        int
	rank, ranks uint32
	chunk, run  uint64
	groups      uint32
}

// shardTopLen checks the magic and version in a shard file's first 12
// bytes and returns the length of its fixed header.
func shardTopLen(b []byte) (int, error) {
	if string(b[:8]) != shardMagic {
		return 0, fmt.Errorf("%w: not a shard file (bad magic; a whole state file loads with Load)", ErrState)
	}
	switch v := binary.LittleEndian.Uint32(b[8:]); v {
	case 1:
		return 36, nil
	case shardVersion:
		return shardTopMax, nil
	default:
		return 0, fmt.Errorf("%w: shard file version %d, this build reads versions 1 and %d", ErrState, v, shardVersion)
	}
}

// parseShardTop parses the fixed header b (of the length shardTopLen gave),
// refusing one that SaveShard does not write: an unknown kind or element
// size, padding that is not zero, a rank outside its ranks, more ranks than
// MaxRanks, a chunk size of 0 or beyond int.
func parseShardTop(b []byte) (shardTop, error) {
	t := shardTop{
		kind:   Kind(b[12]),
		elem:   int(b[13]),
		rank:   binary.LittleEndian.Uint32(b[16:]),
		ranks:  binary.LittleEndian.Uint32(b[20:]),
		chunk:  binary.LittleEndian.Uint64(b[24:]),
		groups: binary.LittleEndian.Uint32(b[len(b)-4:]),
	}
	if len(b) == shardTopMax {
		t.run = binary.LittleEndian.Uint64(b[32:])
	}
	if kinds[t.kind] == nil || (t.elem != 4 && t.elem != 8) || b[14] != 0 || b[15] != 0 ||
		t.ranks == 0 || t.ranks > MaxRanks || t.rank >= t.ranks || t.chunk == 0 || t.chunk > math.MaxInt {
		return shardTop{}, fmt.Errorf("%w: bad header (%v state of %d-byte elements, rank %d of %d, chunk size %d)", ErrState, t.kind, t.elem, t.rank, t.ranks, t.chunk)
	}
	return t, nil
}

// LoadShardFiles loads the shard files at paths; see LoadShards.
func (o *Optimizer[T]) LoadShardFiles(paths ...string) error {
	if err := o.usable(); err != nil {
		return err
	}
	rs := make([]io.Reader, len(paths))
	for i, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rs[i] = f
	}
	return o.LoadShards(rs...)
}

// isShardFile reports whether r starts with the shard file's magic. An
// error of r (not the end of a short input) comes back, as Load returns it:
// a bufio.Reader reports it once, and the reads after the peek would see
// only the end of the input.
func isShardFile(r *bufio.Reader) (bool, error) {
	b, err := r.Peek(len(shardMagic))
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("optim: load: %w", err)
	}
	return string(b) == shardMagic, nil
}

// shardHead is what every file of a set holds alike: the groups, and each
// parameter's header.
type shardHead struct {
	run    uint64
	sum    uint64 // the file's checksum (readShard)
	groups []Hyper
	params []shardParam
}

type shardParam struct {
	name   string
	group  int64
	dims   []int64
	length int64
	step   int64
	sc     scalars
}

func (a shardParam) equal(b shardParam) bool {
	return a.name == b.name && a.group == b.group && slices.Equal(a.dims, b.dims) && a.length == b.length &&
		a.step == b.step && math.Float64bits(a.sc[0]) == math.Float64bits(b.sc[0])
}

// LoadShards reads a set of shard files (SaveShard; Save on a sharded
// optimizer), each to its end, and replaces the optimizer's group
// hyperparameters, step counts, per-parameter scalars and the state of its
// spans (every element of every parameter when it is not sharded) with
// theirs. The files may come from any number of ranks and any ChunkSize:
// each element's state is taken from the file that holds it, so that a
// set saved by R ranks loads into R' ranks (every rank given the whole
// set, or at least the files that hold its spans), into one, or into an
// optimizer that is not sharded.
//
// As with Load, everything is read and checked first, and on an error the
// optimizer is unchanged. Errors wrap ErrState for files that are
// truncated, corrupted or hold invalid values (as Load checks them), for
// files that disagree (hyperparameters, step counts, scalars, parameter
// headers: not one save), that hold an element twice, or that together do
// not hold every element of the spans; and ErrMismatch for intact files
// that do not belong to the optimizer (kind, element type, groups,
// parameters' names, groups or shapes). An optimizer with 16-bit
// parameters loads no shard files (ErrInvalid, as SaveShard).
func (o *Optimizer[T]) LoadShards(rs ...io.Reader) error {
	if err := o.usable(); err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("%w: LoadShards of no file", ErrInvalid)
	}
	if slices.Contains(rs, nil) {
		return fmt.Errorf("%w: LoadShards from a nil reader", ErrInvalid)
	}
	if err := shardable(o.groups[0]); err != nil {
		return err
	}
	if err := o.noHalfShards(); err != nil {
		return err
	}
	if o.shard != nil {
		o.prepare() // the spans
	}
	np := len(o.params)
	// A buffer is made when a file's data for it is read (readShard), so
	// that an empty or bad file costs no state-sized memory.
	bufs := make([][3][]T, np)
	// ranges[i] holds the element ranges of parameter i the files hold;
	// fresh[i] whether the files hold its buffers (2) or none, as
	// savedBuffers writes a fresh parameter (1).
	ranges := make([][][2]int64, np)
	fresh := make([]int8, np)
	var head *shardHead
	why := ""
	for f, r := range rs {
		h, w, err := o.readShard(r, head, bufs, ranges, fresh)
		if err != nil {
			return fmt.Errorf("shard file %d: %w", f, err)
		}
		if why == "" {
			why = w
		}
		if head == nil {
			head = h
		}
	}
	if why != "" {
		return fmt.Errorf("%w: %s", ErrMismatch, why)
	}
	for i := range o.params {
		rg := ranges[i]
		slices.SortFunc(rg, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
		for j := 1; j < len(rg); j++ {
			if rg[j][0] < rg[j-1][1] {
				return fmt.Errorf("%w: parameter %q: the files hold elements [%d, %d) twice", ErrState, o.params[i].name, rg[j][0], min(rg[j][1], rg[j-1][1]))
			}
		}
		lo, hi := o.stateSpan(i)
		at := int64(lo)
		for _, x := range rg {
			if x[0] > at && at < int64(hi) {
				return fmt.Errorf("%w: parameter %q: no file holds the state of elements [%d, %d)", ErrState, o.params[i].name, at, min(x[0], int64(hi)))
			}
			at = max(at, x[1])
		}
		if at < int64(hi) {
			return fmt.Errorf("%w: parameter %q: no file holds the state of elements [%d, %d)", ErrState, o.params[i].name, at, hi)
		}
	}
	for i := range o.params {
		hp := head.params[i]
		g := head.groups[hp.group]
		// The buffers are the file's rule's (the group's now may keep more
		// or fewer: AMSGrad or momentum turned on or off since).
		lo, hi := o.stateSpan(i)
		for k := range bufs[i] {
			switch {
			case k >= len(g.buffers()):
				bufs[i][k] = nil
			case bufs[i][k] == nil:
				bufs[i][k] = make([]T, hi-lo)
			}
		}
		if err := checkBuffers(g, g.buffers(), bufs[i][:len(g.buffers())], hp.step); err != nil { // a shardable rule: not shaped
			return fmt.Errorf("%w: parameter %q: %v", ErrState, hp.name, err)
		}
		if err := checkScalarsOf(g, hp.sc, hp.step); err != nil {
			return fmt.Errorf("%w: parameter %q: %v", ErrState, hp.name, err)
		}
	}

	prev, prevOK := o.heldSum() // (before the commit: the state held)
	// Commit: nothing above has touched the optimizer.
	if o.shard != nil && o.shard.ranks > 1 {
		o.shard.file = head.run // the state is the files' until a Step
	}
	copy(o.groups, head.groups)
	for i := range o.params {
		p := &o.params[i]
		p.step = head.params[i].step
		p.sc = head.params[i].sc
		if fresh[i] == 1 {
			bufs[i] = [3][]T{} // new buffers: layout fills them and marks p fresh
		}
		p.buf = bufs[i]
		p.bufNames = head.groups[p.group].buffers()
		p.fresh = fresh[i] == 1 // not left to layout: see Load
	}
	o.dirty = true
	o.prepare() // as Load: the groups' kernels may have changed
	if o.shard != nil && o.shard.ranks > 1 {
		// The files after the next Step are not the same run's, unless
		// the state is the one held (shard.go).
		after, afterOK := o.heldSum()
		o.shard.loaded(prev, prevOK, after, afterOK, len(rs) == 1, head.sum)
	}
	return nil
}

// readShard reads one shard file to its end. head is the first file's
// header (nil for the first file), which this one must repeat. The state
// of the elements of each parameter's span that the file holds is read
// into bufs (indexed from the span's start), and the file's range of each
// parameter appended to ranges. It returns the file's header and the first
// way in which the file does not fit the optimizer ("" when it does),
// or an error for a file that cannot be read or disagrees with head.
func (o *Optimizer[T]) readShard(r io.Reader, head *shardHead, bufs [][3][]T, ranges [][][2]int64, fresh []int8) (*shardHead, string, error) {
	d := decoder{r: bufio.NewReaderSize(r, 1<<16), h: crc64.New(crcTable)}
	var top [shardTopMax]byte
	d.read(top[:12])
	if d.err != nil {
		return nil, "", d.fail()
	}
	n, err := shardTopLen(top[:12])
	if err != nil {
		return nil, "", err
	}
	d.read(top[12:n])
	if d.err != nil {
		return nil, "", d.fail()
	}
	t, err := parseShardTop(top[:n])
	if err != nil {
		return nil, "", err
	}
	kind, elem, run := t.kind, t.elem, t.run
	switch {
	case kind != o.kind:
		d.mismatch("a %v state for a %v optimizer", kind, o.kind)
	case elem != o.ops.size:
		d.mismatch("%d-byte elements for a %d-byte optimizer", elem, o.ops.size)
	}
	h := &shardHead{run: run}
	differ := "" // the first way the file disagrees with the first file
	if head != nil && run != head.run {
		differ = fmt.Sprintf("run id %#x, the first file's %#x (the files of two runs)", run, head.run)
	}
	ng := int64(t.groups)
	if ng != int64(len(o.groups)) {
		d.mismatch("%d groups in the file, %d here", ng, len(o.groups))
	}
	scratchC := new(kernels.Coeffs) // checkIn's block, for every group
	for i := int64(0); i < ng && d.err == nil; i++ {
		n := int(d.u8())
		names, vals := make([]string, n), make([]float64, n)
		for j := range n {
			names[j] = d.str(int(d.u8()))
			vals[j] = math.Float64frombits(d.u64())
		}
		if d.err != nil {
			break
		}
		g, err := fromValues(kind, names, vals)
		if err == nil {
			err = g.Validate()
		}
		if err == nil && d.why == "" {
			// Whether the values are usable in T is asked of a state of
			// this kind and element type only: another one's is a
			// mismatch, however usable its values are here.
			err = checkIn[T](g, o.invScale(o.lossScale), scratchC)
		}
		if err != nil {
			d.invalidGroup(i, err)
			break
		}
		h.groups = append(h.groups, g)
	}
	scn := scalarNamesOf(kinds[kind])
	np := int64(d.u32())
	if d.err == nil && np != int64(len(o.params)) {
		d.mismatch("%d parameters in the file, %d here", np, len(o.params))
	}
	scratch := make([]byte, 1<<16)
	for i := int64(0); i < np && d.err == nil; i++ {
		var hp shardParam
		hp.name = d.str(int(d.u16()))
		hp.group = int64(d.u32())
		hp.dims = make([]int64, d.u8())
		for j := range hp.dims {
			hp.dims[j] = int64(d.u64())
		}
		hp.length = int64(d.u64())
		hp.step = int64(d.u64())
		if n := int(d.u8()); d.err == nil && n != len(scn) {
			d.invalid("parameter %q: %d scalars, a %v parameter has %d", hp.name, n, kind, len(scn))
		}
		for k := 0; k < len(scn) && d.err == nil; k++ {
			if key := d.str(int(d.u8())); d.err == nil && key != scn[k] {
				d.invalid("parameter %q: scalar %d is %q, want %q", hp.name, k, key, scn[k])
			}
			hp.sc[k] = math.Float64frombits(d.u64())
		}
		flo, fhi := int64(d.u64()), int64(d.u64())
		nbuf := int(d.u8())
		if d.err != nil {
			break
		}
		if hp.length < 0 || hp.length > math.MaxInt64/8 || hp.group < 0 || hp.group >= ng || !shapeHolds(hp.dims, hp.length) {
			d.invalid("parameter %d (%q): bad group, shape or length", i, hp.name)
			break
		}
		if flo < 0 || flo > fhi || fhi > hp.length {
			d.invalid("parameter %q: range [%d, %d) of %d elements", hp.name, flo, fhi, hp.length)
			break
		}
		if hp.step < 0 || hp.step > MaxStep {
			d.invalid("parameter %q: step %d, want 0 to MaxStep = %d", hp.name, hp.step, MaxStep)
			break
		}
		want := h.groups[hp.group].buffers()
		isFresh := freshInFile(h.groups[hp.group], nbuf, len(want), hp.step)
		if isFresh {
			want = nil // fresh (savedBuffers): the commit leaves its buffers to layout
		}
		if i < int64(len(fresh)) {
			f := int8(2)
			if isFresh {
				f = 1
			}
			if fresh[i] != 0 && fresh[i] != f {
				d.invalid("parameter %q: one file holds its state buffers and another does not", hp.name)
				break
			}
			fresh[i] = f
		}
		if nbuf != len(want) {
			d.invalid("parameter %q: %d state buffers, its group has %d", hp.name, nbuf, len(want))
			break
		}
		if head != nil && differ == "" && (i >= int64(len(head.params)) || !hp.equal(head.params[i])) {
			differ = fmt.Sprintf("parameter %d (%q): its header (group, shape, step, scalars) differs from the first file's", i, hp.name)
		}
		h.params = append(h.params, hp)
		match := false
		var p *param[T]
		if i < int64(len(o.params)) {
			p = &o.params[i]
		}
		switch {
		case p == nil:
		case hp.name != p.name:
			d.mismatch("parameter %d is %q in the file, %q here", i, hp.name, p.name)
		case hp.group != int64(p.group):
			d.mismatch("parameter %q is in group %d in the file, %d here", hp.name, hp.group, p.group)
		case hp.length != int64(p.len()) || !sameShape(hp.dims, p.shape):
			d.mismatch("parameter %q has shape %v in the file, %v here", hp.name, hp.dims, p.shape)
		default:
			match = d.why == ""
		}
		// The part of the file's range in this optimizer's span.
		var a, b int64
		if match {
			lo, hi := o.stateSpan(int(i))
			a, b = max(flo, int64(lo)), min(fhi, int64(hi))
			b = max(a, b)
			if fhi > flo {
				ranges[i] = append(ranges[i], [2]int64{flo, fhi})
			}
		}
		for k := 0; k < nbuf && d.err == nil; k++ {
			if key := d.str(int(d.u8())); d.err == nil && key != want[k] {
				d.invalid("parameter %q: buffer %d is %q, want %q", hp.name, k, key, want[k])
			}
			if !match || a == b {
				d.skip((fhi - flo) * int64(elem))
				continue
			}
			lo, hi := o.stateSpan(int(i))
			if bufs[i][k] == nil { // the file's rule keeps more buffers than the group does now
				bufs[i][k] = make([]T, hi-lo)
			}
			d.skip((a - flo) * int64(elem))
			readElems(&d, bufs[i][k][a-int64(lo):b-int64(lo)], scratch)
			d.skip((fhi - b) * int64(elem))
		}
	}
	if d.err != nil {
		return nil, "", d.fail()
	}
	sum := d.h.Sum64()
	d.h = nil
	if got := d.u64(); d.err != nil {
		return nil, "", d.fail()
	} else if got != sum {
		return nil, "", fmt.Errorf("%w: checksum mismatch (corrupted)", ErrState)
	}
	h.sum = sum
	if _, err := d.r.Peek(1); err != io.EOF {
		if err != nil {
			return nil, "", fmt.Errorf("optim: load: %w", err)
		}
		return nil, "", fmt.Errorf("%w: trailing data after the checksum", ErrState)
	}
	if head != nil && differ == "" && d.why == "" {
		if len(h.groups) != len(head.groups) {
			differ = fmt.Sprintf("%d groups, the first file has %d", len(h.groups), len(head.groups))
		}
		for i, g := range h.groups[:min(len(h.groups), len(head.groups))] {
			if !sameHyper(g, head.groups[i]) {
				differ = fmt.Sprintf("group %d differs from the first file's", i)
				break
			}
		}
	}
	if differ != "" {
		return nil, "", fmt.Errorf("%w: %s: the files are not of one save", ErrState, differ)
	}
	return h, d.why, nil
}

// sameHyper reports whether two configs hold the same values, bit for bit.
func sameHyper(a, b Hyper) bool {
	an, av := values(a)
	bn, bv := values(b)
	return slices.Equal(an, bn) && slices.EqualFunc(av, bv, func(x, y float64) bool {
		return math.Float64bits(x) == math.Float64bits(y)
	})
}

// noHalfShards refuses shard files on an optimizer with 16-bit parameters
// (ErrInvalid): a shard file records neither the types of the parameters
// nor their 16-bit state and float32 masters, which only the state file
// of Save does (a sharded optimizer takes no 16-bit parameters at all).
func (o *Optimizer[T]) noHalfShards() error {
	for i := range o.params {
		if o.params[i].half != nil {
			return fmt.Errorf("%w: parameter %q is 16-bit: shard files record no 16-bit state or master; use Save and Load", ErrInvalid, o.params[i].name)
		}
	}
	return nil
}
