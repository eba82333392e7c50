package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"io"
	"testing"
)

// TestReadShardHeader: the header of each rank's shard file says its rank,
// the number of ranks, the chunk size and the run id that the files of
// one set share, and its last 8 bytes the file's checksum; what is not a
// shard file's header is refused (ErrState).
func TestReadShardHeader(t *testing.T) {
	const ranks = 3
	m := newTestModel[float32](shardSizes)
	m.fillGrads(0)
	sr := newShardRun(t, m, DefaultAdam(), nil, nil, Options{ChunkSize: 64}, ranks)
	if err := onRanks(ranks, func(r int) error { _, err := sr.opts[r].Step(); return err }); err != nil {
		t.Fatal(err)
	}
	var files [ranks][]byte
	for r := range ranks {
		var b bytes.Buffer
		if err := sr.opts[r].SaveShard(&b); err != nil {
			t.Fatal(err)
		}
		files[r] = b.Bytes()
	}
	var run uint64
	for r, f := range files {
		h, err := ReadShardHeader(bytes.NewReader(f), int64(len(f)))
		if err != nil {
			t.Fatal(err)
		}
		if r == 0 {
			run = h.Run
		}
		sum := binary.LittleEndian.Uint64(f[len(f)-8:])
		if want := (ShardHeader{Rank: r, Ranks: ranks, ChunkSize: 64, Run: run, Sum: sum}); h != want || run == 0 || sum == 0 {
			t.Errorf("file %d: %+v, want %+v (a run id other than 0)", r, h, want)
		}
	}
	// An unsharded optimizer's file: rank 0 of 1, run 0.
	o := mustNew[float32](t, DefaultAdam(), Options{})
	m.register(t, o, nil)
	var b bytes.Buffer
	if err := o.SaveShard(&b); err != nil {
		t.Fatal(err)
	}
	un := b.Bytes()
	if h, err := ReadShardHeader(bytes.NewReader(un), int64(len(un))); err != nil ||
		h != (ShardHeader{Ranks: 1, ChunkSize: DefaultChunkSize, Sum: binary.LittleEndian.Uint64(un[len(un)-8:])}) {
		t.Errorf("an unsharded file: %+v, %v", h, err)
	}
	bad := func(f func(b []byte)) []byte {
		c := bytes.Clone(files[1])
		f(c)
		return c
	}
	for name, f := range map[string][]byte{
		"empty":        nil,
		"short":        files[1][:40],
		"header only":  files[1][:44],
		"magic":        bad(func(b []byte) { b[0] ^= 1 }),
		"version":      bad(func(b []byte) { b[8] = 9 }),
		"rank ≥ ranks": bad(func(b []byte) { b[16] = 3 }),
		"no ranks":     bad(func(b []byte) { b[20] = 0 }),
		"no chunk":     bad(func(b []byte) { clear(b[24:32]) }),
		"kind":         bad(func(b []byte) { b[12] = 0xff }),
		"element size": bad(func(b []byte) { b[13] = 2 }),
		"padding":      bad(func(b []byte) { b[15] = 1 }),
		"ranks > MaxRanks": bad(func(b []byte) {
			binary.LittleEndian.PutUint32(b[20:], MaxRanks+1)
		}),
		"chunk > MaxInt": bad(func(b []byte) { binary.LittleEndian.PutUint64(b[24:], 1<<63) }),
	} {
		if _, err := ReadShardHeader(bytes.NewReader(f), int64(len(f))); !errors.Is(err, ErrState) {
			t.Errorf("%s: %v, want ErrState", name, err)
		}
		// LoadShards refuses the same headers, the checksum made right
		// so that the header's parse is what sees them.
		if len(f) < 44+8 {
			continue
		}
		binary.LittleEndian.PutUint64(f[len(f)-8:], crc64.Checksum(f[:len(f)-8], crcTable))
		if err := o.LoadShards(bytes.NewReader(files[0]), bytes.NewReader(f), bytes.NewReader(files[2])); !errors.Is(err, ErrState) {
			t.Errorf("LoadShards, %s: %v, want ErrState", name, err)
		}
	}
	rs := make([]io.Reader, ranks)
	for r, f := range files {
		rs[r] = bytes.NewReader(f)
	}
	if err := o.LoadShards(rs...); err != nil {
		t.Errorf("LoadShards of the intact files: %v", err)
	}
}
