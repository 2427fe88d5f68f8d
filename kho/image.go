package kho

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Image is a preserved memory together with the PA of the root of the
// "LUO" subtree (struct luo_ser), as the next kernel finds them. WriteTo
// and ReadImage store it in a file (see the package documentation for the
// format), so that the stages of an agent can run in different processes.
type Image struct {
	Mem  *Memory
	Root uint64
}

// Container format constants.
const (
	// ImageMagic starts every image file.
	ImageMagic = "GOLUOKHO"
	// ImageVersion is the container version WriteTo writes and ReadImage
	// accepts.
	ImageVersion = 1
	// MaxImagePages is the most pages an image file holds (16 GiB):
	// ReadImage accepts no more, and WriteTo writes no more.
	MaxImagePages = 1 << 22

	imageHeaderSize      = 32
	imageLittle     byte = 1
	imageBig        byte = 2
)

func nativeOrderTag() byte {
	if bigEndian {
		return imageBig
	}
	return imageLittle
}

// WriteTo writes the image to w: the header, then every page of img.Mem
// with its PA, in ascending PA order. It returns the number of bytes
// written. An image of more than MaxImagePages pages, which ReadImage
// would refuse, is not written: WriteTo writes nothing and returns an
// error matching ErrImageTooLarge.
func (img *Image) WriteTo(w io.Writer) (int64, error) {
	if n := img.Mem.Pages(); n > MaxImagePages {
		return 0, fmt.Errorf("%w: %d pages (%d MiB), ReadImage takes at most %d (%d GiB)", ErrImageTooLarge, n, uint64(n)*PageSize>>20, MaxImagePages, MaxImagePages*PageSize>>30)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &countWriter{w: bw}
	var hdr [imageHeaderSize]byte
	copy(hdr[0:8], ImageMagic)
	binary.LittleEndian.PutUint16(hdr[8:], ImageVersion)
	hdr[10] = nativeOrderTag()
	binary.LittleEndian.PutUint64(hdr[16:], img.Root)
	m := img.Mem
	binary.LittleEndian.PutUint64(hdr[24:], uint64(m.Pages()))
	// Bytes still buffered when a write or Flush failed were not written.
	written := func() int64 { return cw.n - int64(bw.Buffered()) }
	if _, err := cw.Write(hdr[:]); err != nil {
		return written(), err
	}
	var pab [8]byte
	var pg []byte // a page of a backed run
	for i := range m.runs {
		r := &m.runs[i]
		for j := uint64(0); j < r.n; j++ {
			if r.isFreed(j) {
				continue
			}
			binary.LittleEndian.PutUint64(pab[:], (r.pfn+j)<<pageShift)
			if _, err := cw.Write(pab[:]); err != nil {
				return written(), err
			}
			b := r.buf
			if b == nil {
				if pg == nil {
					pg = make([]byte, PageSize)
				}
				if err := r.backAccess(pg, j*PageSize, false); err != nil {
					return written(), fmt.Errorf("kho: reading preserved memory at %#x: %w", (r.pfn+j)<<pageShift, err)
				}
				b = pg
			} else {
				b = b[j*PageSize : (j+1)*PageSize]
			}
			if _, err := cw.Write(b); err != nil {
				return written(), err
			}
		}
	}
	err := bw.Flush()
	return written(), err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrImageFormat, fmt.Sprintf(format, args...))
}

// imageRecord is the size of a page's record in an image file.
const imageRecord = 8 + PageSize

// imageReadPages is the most page records ReadImage reads in one batch,
// and so the most pages of one backing array it makes (1 MiB).
const imageReadPages = 256

// ReadImage reads an image written by WriteTo. It checks the magic, the
// version, that the page contents are in this machine's byte order, that
// the reserved bytes are zero, that the page count is at most
// MaxImagePages, that PAs are non-zero, page aligned and strictly
// ascending, and that nothing follows the last page. Errors about the
// format wrap ErrImageFormat. It reads the page records in batches that
// double up to 256 records (1 MiB), and allocates pages only once their
// bytes have arrived, so a hostile page count costs memory in proportion
// to the bytes present, not to the count. Pages at consecutive PAs that
// arrive in one batch share one backing array, as an allocation's pages
// do, so that a memfd's contents move out of them in few copies.
func ReadImage(r io.Reader) (*Image, error) {
	var hdr [imageHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, readErr("header", err)
	}
	if string(hdr[0:8]) != ImageMagic {
		return nil, formatErr("bad magic %q", hdr[0:8])
	}
	if v := binary.LittleEndian.Uint16(hdr[8:]); v != ImageVersion {
		return nil, formatErr("version %d, want %d", v, ImageVersion)
	}
	switch tag := hdr[10]; tag {
	case nativeOrderTag():
	case imageLittle, imageBig:
		return nil, formatErr("pages are in the other byte order (tag %d), this machine's is %d", tag, nativeOrderTag())
	default:
		return nil, formatErr("bad byte order tag %d", tag)
	}
	for _, b := range hdr[11:16] {
		if b != 0 {
			return nil, formatErr("reserved header bytes not zero")
		}
	}
	root := binary.LittleEndian.Uint64(hdr[16:])
	count := binary.LittleEndian.Uint64(hdr[24:])
	if count > MaxImagePages {
		return nil, formatErr("page count %d above %d", count, MaxImagePages)
	}
	m := NewMemory()
	var prev uint64
	var recs []byte
	for i, batch := uint64(0), uint64(1); i < count; batch = min(2*batch, imageReadPages) {
		// A batch of records, twice as many as the last one up to
		// imageReadPages: the buffer grows with the bytes that arrive.
		want := min(count-i, batch) * imageRecord
		if uint64(cap(recs)) < want {
			recs = make([]byte, want)
		}
		n, rerr := io.ReadFull(r, recs[:want])
		k := uint64(n) / imageRecord
		// Check every record's PA, then install each group of pages
		// at consecutive PAs as one run.
		for j := uint64(0); j < k; j++ {
			pa := binary.LittleEndian.Uint64(recs[j*imageRecord:])
			switch {
			case pa == 0:
				return nil, formatErr("page %d at PA 0", i+j)
			case pa%PageSize != 0:
				return nil, formatErr("page %d PA %#x not page aligned", i+j, pa)
			case i+j > 0 && pa <= prev:
				return nil, formatErr("page %d PA %#x not above %#x", i+j, pa, prev)
			}
			prev = pa
		}
		for j := uint64(0); j < k; {
			first := binary.LittleEndian.Uint64(recs[j*imageRecord:])
			g := uint64(1)
			for j+g < k && binary.LittleEndian.Uint64(recs[(j+g)*imageRecord:]) == first+g*PageSize {
				g++
			}
			buf := make([]byte, g*PageSize)
			for p := uint64(0); p < g; p++ {
				rec := recs[(j+p)*imageRecord:]
				copy(buf[p*PageSize:(p+1)*PageSize], rec[8:imageRecord])
			}
			if !m.appendRun(first>>pageShift, buf) {
				// Not reached: the PAs ascend, and a page-aligned PA
				// has a page frame number below 2^52.
				return nil, formatErr("page %d PA %#x cannot be installed", i+j, first)
			}
			j += g
		}
		i += k
		if rerr != nil {
			return nil, readErr(fmt.Sprintf("page %d of %d", i, count), rerr)
		}
	}
	var extra [1]byte
	if n, err := io.ReadFull(r, extra[:]); n != 0 {
		return nil, formatErr("data after the last page")
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("kho: reading image: %w", err)
	}
	return &Image{Mem: m, Root: root}, nil
}

func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErr("truncated %s", what)
	}
	return fmt.Errorf("kho: reading image %s: %w", what, err)
}
