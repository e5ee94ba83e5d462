package tarball

import (
	"encoding/binary"
	"errors"
)

// Huffman stage of a bzip2 block, redone. dsnet/compress's encoder does
// the block sorting (its SA-IS transform is faster than libbzip2's) but
// deals the block's 50-symbol groups to its Huffman tables in turn
// instead of clustering them (a TODO in its writer), so every table codes
// the block's average statistics and the output is about 30% larger than
// libbzip2's on PostgreSQL data. bzip2Recoder reads the symbols back from
// dsnet's block and codes them again as libbzip2 1.0.8 does
// (compress.c, sendMTFValues): tables seeded from slices of the symbol
// frequencies, then four rounds of giving each group the table that codes
// it shortest and rebuilding each table from its groups.

const (
	bzip2GroupSize = 50 // symbols per selector
	bzip2MaxTables = 6
	bzip2MaxSyms   = 258 // 256 MTF values + RUNA/RUNB, less one, + EOB
	bzip2MaxLen    = 17  // libbzip2's limit when it builds codes; 20 is the format's
	bzip2Iters     = 4
)

// bzip2Recoder keeps one worker's tables and buffers between blocks.
type bzip2Recoder struct {
	syms    []uint16
	sels    []uint8
	lens    [bzip2MaxTables][bzip2MaxSyms]uint8
	codes   [bzip2MaxTables][bzip2MaxSyms]uint32
	freq    [bzip2MaxTables][bzip2MaxSyms]int32
	out     bitOut
	huffman huffmanBuilder
}

// recode takes the block of bzip2 stream s that starts at bit pos and
// returns it (from its magic to its last symbol) with new Huffman tables,
// its length in bits, its CRC and where the next block or the end marker
// starts. The bits are valid until the next call.
func (r *bzip2Recoder) recode(s []byte, pos int) (out []byte, nbits int, crc uint32, next int, err error) {
	in := bitIn{s: s, pos: pos}
	if in.read(24) != uint32(bzip2BlockMagic>>24) || in.read(24) != uint32(bzip2BlockMagic&0xffffff) {
		return nil, 0, 0, 0, errors.New("bzip2: unexpected stream layout")
	}
	crc = in.read(32)
	if in.read(1) != 0 {
		return nil, 0, 0, 0, errors.New("bzip2: randomised block")
	}
	origPtr := in.read(24)
	var used [16]uint16
	usedHi := uint16(in.read(16))
	nInUse := 0
	for i := range used {
		if usedHi&(0x8000>>i) != 0 {
			used[i] = uint16(in.read(16))
			for m := used[i]; m != 0; m &= m - 1 {
				nInUse++
			}
		}
	}
	alpha := nInUse + 2
	nTables := int(in.read(3))
	nSels := int(in.read(15))
	if nTables < 2 || nTables > bzip2MaxTables || nSels == 0 || alpha > bzip2MaxSyms {
		return nil, 0, 0, 0, errors.New("bzip2: bad table header")
	}
	// Selectors, move-to-front coded in unary.
	r.sels = r.sels[:0]
	var mtf [bzip2MaxTables]uint8
	for t := range mtf {
		mtf[t] = uint8(t)
	}
	for range nSels {
		j := 0
		for in.read(1) == 1 {
			if j++; j >= nTables {
				return nil, 0, 0, 0, errors.New("bzip2: bad selector")
			}
		}
		v := mtf[j]
		copy(mtf[1:j+1], mtf[:j])
		mtf[0] = v
		r.sels = append(r.sels, v)
	}
	var dec [bzip2MaxTables]huffDecoder
	for t := range nTables {
		l := int(in.read(5))
		for v := range alpha {
			for in.read(1) == 1 {
				l += 1 - 2*int(in.read(1))
			}
			if l < 1 || l > 20 {
				return nil, 0, 0, 0, errors.New("bzip2: bad code length")
			}
			r.lens[t][v] = uint8(l)
		}
		dec[t].init(r.lens[t][:alpha])
	}
	eob := uint16(alpha - 1)
	r.syms = r.syms[:0]
	for g := 0; ; g++ {
		if g >= nSels {
			return nil, 0, 0, 0, errors.New("bzip2: symbols past the last selector")
		}
		d := &dec[r.sels[g]]
		for range bzip2GroupSize {
			sym, ok := d.decode(&in)
			if !ok {
				return nil, 0, 0, 0, errors.New("bzip2: bad symbol")
			}
			r.syms = append(r.syms, sym)
			if sym == eob {
				goto done
			}
		}
	}
done:
	if in.pos > len(s)*8 {
		return nil, 0, 0, 0, errors.New("bzip2: truncated block")
	}
	next = in.pos

	w := &r.out
	w.reset()
	w.put(uint32(bzip2BlockMagic>>24), 24)
	w.put(uint32(bzip2BlockMagic&0xffffff), 24)
	w.put(crc, 32)
	w.put(0, 1)
	w.put(origPtr, 24)
	w.put(uint32(usedHi), 16)
	for i := range used {
		if usedHi&(0x8000>>i) != 0 {
			w.put(uint32(used[i]), 16)
		}
	}
	nTables = r.chooseTables(alpha)
	w.put(uint32(nTables), 3)
	w.put(uint32(len(r.sels)), 15)
	for t := range mtf {
		mtf[t] = uint8(t)
	}
	for _, v := range r.sels {
		j := 0
		for mtf[j] != v {
			j++
		}
		copy(mtf[1:j+1], mtf[:j])
		mtf[0] = v
		w.put((1<<(j+1))-2, uint(j+1)) // j ones, then a zero
	}
	for t := range nTables {
		lens := r.lens[t][:alpha]
		cur := int(lens[0])
		w.put(uint32(cur), 5)
		for _, l := range lens {
			for ; cur < int(l); cur++ {
				w.put(2, 2) // 10: one longer
			}
			for ; cur > int(l); cur-- {
				w.put(3, 2) // 11: one shorter
			}
			w.put(0, 1)
		}
		assignCodes(r.codes[t][:alpha], lens)
	}
	for g, t := range r.sels {
		lens, codes := &r.lens[t], &r.codes[t]
		for _, sym := range r.syms[g*bzip2GroupSize : min((g+1)*bzip2GroupSize, len(r.syms))] {
			w.put(codes[sym], uint(lens[sym]))
		}
	}
	out, nbits = w.finish()
	return out, nbits, crc, next, nil
}

// chooseTables fills r.sels, r.lens and returns the number of tables, as
// libbzip2 1.0.8 chooses them.
func (r *bzip2Recoder) chooseTables(alpha int) int {
	n := len(r.syms)
	nTables := 6
	switch {
	case n < 200:
		nTables = 2
	case n < 600:
		nTables = 3
	case n < 1200:
		nTables = 4
	case n < 2400:
		nTables = 5
	}
	var total [bzip2MaxSyms]int32
	for _, s := range r.syms {
		total[s]++
	}
	// Seed: table t codes cheaply a slice of the alphabet holding about
	// 1/nTables of the symbols, and dearly the rest.
	const cheap, dear = 0, 15
	rem, gs := int32(n), 0
	for part := nTables; part > 0; part-- {
		target := rem / int32(part)
		ge, acc := gs-1, int32(0)
		for acc < target && ge < alpha-1 {
			ge++
			acc += total[ge]
		}
		if ge > gs && part != nTables && part != 1 && (nTables-part)%2 == 1 {
			acc -= total[ge]
			ge--
		}
		for v := range alpha {
			if v >= gs && v <= ge {
				r.lens[part-1][v] = cheap
			} else {
				r.lens[part-1][v] = dear
			}
		}
		gs, rem = ge+1, rem-acc
	}
	nGroups := (n + bzip2GroupSize - 1) / bzip2GroupSize
	if cap(r.sels) < nGroups {
		r.sels = make([]uint8, nGroups)
	}
	r.sels = r.sels[:nGroups]
	// A group's cost under all tables at once: six 10-bit fields (50
	// symbols of at most 17 bits stay under 1024).
	var packed [bzip2MaxSyms]uint64
	for range bzip2Iters {
		for v := range alpha {
			var p uint64
			for t := range nTables {
				p |= uint64(r.lens[t][v]) << (10 * t)
			}
			packed[v] = p
		}
		for t := range nTables {
			clear(r.freq[t][:alpha])
		}
		for g := range nGroups {
			group := r.syms[g*bzip2GroupSize : min((g+1)*bzip2GroupSize, n)]
			var cost uint64
			for _, s := range group {
				cost += packed[s]
			}
			best, bestCost := 0, uint64(1<<63)
			for t := range nTables {
				if c := (cost >> (10 * t)) & 1023; c < bestCost {
					best, bestCost = t, c
				}
			}
			r.sels[g] = uint8(best)
			freq := &r.freq[best]
			for _, s := range group {
				freq[s]++
			}
		}
		for t := range nTables {
			r.huffman.lengths(r.lens[t][:alpha], r.freq[t][:alpha], bzip2MaxLen)
		}
	}
	return nTables
}

// assignCodes gives canonical codes: by length, then by symbol.
func assignCodes(codes []uint32, lens []uint8) {
	var code uint32
	for l := uint8(1); l <= 20; l++ {
		for v, vl := range lens {
			if vl == l {
				codes[v] = code
				code++
			}
		}
		code <<= 1
	}
}

// huffmanBuilder makes code lengths as libbzip2's BZ2_hbMakeCodeLengths
// does: ties broken towards the shallower subtree, and frequencies halved
// until no code is longer than the limit; unused symbols count as one.
type huffmanBuilder struct {
	heap [bzip2MaxSyms + 2]int32
	// weight is a subtree's count << 8 | its depth; 64 bits so that no
	// count a caller passes can overflow it.
	weight [bzip2MaxSyms * 2]int64
	parent [bzip2MaxSyms * 2]int32
}

func (h *huffmanBuilder) lengths(lens []uint8, freq []int32, maxLen int) {
	n := len(lens)
	for i, f := range freq {
		h.weight[i+1] = int64(max(f, 1)) << 8
	}
	for {
		nodes, nHeap := n, 0
		h.heap[0], h.weight[0], h.parent[0] = 0, 0, -2
		for i := 1; i <= n; i++ {
			h.parent[i] = -1
			nHeap++
			h.heap[nHeap] = int32(i)
			h.up(nHeap)
		}
		for nHeap > 1 {
			n1 := h.heap[1]
			h.heap[1] = h.heap[nHeap]
			nHeap--
			h.down(1, nHeap)
			n2 := h.heap[1]
			h.heap[1] = h.heap[nHeap]
			nHeap--
			h.down(1, nHeap)
			nodes++
			h.parent[n1], h.parent[n2] = int32(nodes), int32(nodes)
			w1, w2 := h.weight[n1], h.weight[n2]
			h.weight[nodes] = (w1&^0xff + w2&^0xff) | (1 + max(w1&0xff, w2&0xff))
			h.parent[nodes] = -1
			nHeap++
			h.heap[nHeap] = int32(nodes)
			h.up(nHeap)
		}
		tooLong := false
		for i := 1; i <= n; i++ {
			depth := 0
			for k := int32(i); h.parent[k] >= 0; k = h.parent[k] {
				depth++
			}
			lens[i-1] = uint8(depth)
			tooLong = tooLong || depth > maxLen
		}
		if !tooLong {
			return
		}
		for i := 1; i <= n; i++ {
			h.weight[i] = (1 + (h.weight[i]>>8)/2) << 8
		}
	}
}

func (h *huffmanBuilder) up(z int) {
	tmp := h.heap[z]
	for h.weight[tmp] < h.weight[h.heap[z>>1]] {
		h.heap[z] = h.heap[z>>1]
		z >>= 1
	}
	h.heap[z] = tmp
}

func (h *huffmanBuilder) down(z, nHeap int) {
	tmp := h.heap[z]
	for {
		yy := z << 1
		if yy > nHeap {
			break
		}
		if yy < nHeap && h.weight[h.heap[yy+1]] < h.weight[h.heap[yy]] {
			yy++
		}
		if h.weight[tmp] < h.weight[h.heap[yy]] {
			break
		}
		h.heap[z] = h.heap[yy]
		z = yy
	}
	h.heap[z] = tmp
}

// huffDecoder reads canonical codes of at most 20 bits.
type huffDecoder struct {
	first, count, index [21]uint32
	perm                [bzip2MaxSyms]uint16
	minLen, maxLen      uint
}

func (d *huffDecoder) init(lens []uint8) {
	*d = huffDecoder{minLen: 20}
	k := 0
	var code uint32
	for l := uint(1); l <= 20; l++ {
		d.first[l], d.index[l] = code, uint32(k)
		for v, vl := range lens {
			if uint(vl) == l {
				d.perm[k] = uint16(v)
				k++
				d.count[l]++
			}
		}
		if d.count[l] > 0 {
			d.minLen, d.maxLen = min(d.minLen, l), l
		}
		code = (code + d.count[l]) << 1
	}
}

func (d *huffDecoder) decode(in *bitIn) (uint16, bool) {
	v := in.peek20()
	for l := d.minLen; l <= d.maxLen; l++ {
		if c := v>>(20-l) - d.first[l]; c < d.count[l] {
			in.pos += int(l)
			return d.perm[d.index[l]+c], true
		}
	}
	return 0, false
}

// bitIn reads bits most significant first; past the end it reads zeros.
type bitIn struct {
	s   []byte
	pos int
}

func (r *bitIn) load() uint64 {
	i := r.pos >> 3
	var v uint64
	if i+8 <= len(r.s) {
		v = binary.BigEndian.Uint64(r.s[i:])
	} else {
		for k := range 8 {
			v <<= 8
			if i+k < len(r.s) {
				v |= uint64(r.s[i+k])
			}
		}
	}
	return v << uint(r.pos&7)
}

// read returns the next n (1 to 32) bits.
func (r *bitIn) read(n uint) uint32 {
	v := r.load()
	r.pos += int(n)
	return uint32(v >> (64 - n))
}

func (r *bitIn) peek20() uint32 { return uint32(r.load() >> 44) }

// bitOut writes bits most significant first.
type bitOut struct {
	out []byte
	acc uint64
	n   uint // bits held in acc
}

func (w *bitOut) reset() { w.out, w.acc, w.n = w.out[:0], 0, 0 }

// put appends the low n (0 to 32) bits of v.
func (w *bitOut) put(v uint32, n uint) {
	w.acc = w.acc<<n | uint64(v)
	w.n += n
	for w.n >= 8 {
		w.n -= 8
		w.out = append(w.out, byte(w.acc>>w.n))
	}
}

// finish pads the last byte with zeros and returns the bytes and the
// number of bits written.
func (w *bitOut) finish() ([]byte, int) {
	nbits := len(w.out)*8 + int(w.n)
	if w.n > 0 {
		w.out = append(w.out, byte(w.acc<<(8-w.n)))
	}
	return w.out, nbits
}
