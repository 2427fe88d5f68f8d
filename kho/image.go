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
	addrs := img.Mem.PageAddrs()
	binary.LittleEndian.PutUint64(hdr[24:], uint64(len(addrs)))
	// Bytes still buffered when a write or Flush failed were not written.
	written := func() int64 { return cw.n - int64(bw.Buffered()) }
	if _, err := cw.Write(hdr[:]); err != nil {
		return written(), err
	}
	var pab [8]byte
	for _, pa := range addrs {
		binary.LittleEndian.PutUint64(pab[:], pa)
		if _, err := cw.Write(pab[:]); err != nil {
			return written(), err
		}
		if _, err := cw.Write(img.Mem.page(pa)[:]); err != nil {
			return written(), err
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

// ReadImage reads an image written by WriteTo. It checks the magic, the
// version, that the page contents are in this machine's byte order, that
// the reserved bytes are zero, that the page count is at most
// MaxImagePages, that PAs are non-zero, page aligned and strictly
// ascending, and that nothing follows the last page. Errors about the
// format wrap ErrImageFormat. It reads page by page and allocates a page
// only once its bytes have arrived, so a hostile page count costs no more
// memory than the bytes present.
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
	var rec [8 + PageSize]byte
	var prev uint64
	for i := uint64(0); i < count; i++ {
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			return nil, readErr(fmt.Sprintf("page %d of %d", i, count), err)
		}
		pa := binary.LittleEndian.Uint64(rec[0:8])
		switch {
		case pa == 0:
			return nil, formatErr("page %d at PA 0", i)
		case pa%PageSize != 0:
			return nil, formatErr("page %d PA %#x not page aligned", i, pa)
		case i > 0 && pa <= prev:
			return nil, formatErr("page %d PA %#x not above %#x", i, pa, prev)
		}
		prev = pa
		pg := new(page)
		copy(pg[:], rec[8:])
		m.setPage(pa, pg)
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
