package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/go-luo/luo/kho"
)

const inspectUsage = `Usage: luoctl inspect [-json] IMAGE

Decodes IMAGE, the preserved memory a fake kernel's live update writes
(fake.WithImageFile, LUO_FAKE_IMAGE), applying the rules the next kernel
applies, and prints the liveupdate number and a table of the sessions and
their files:

  SESSION  TOKEN  HANDLER  SIZE  POSITION  PAGES

TOKEN is in hex, HANDLER is the file handler's compatible string, and for
memfds SIZE and POSITION are in bytes and PAGES counts the pages preserved.
A session without files has a row of its own with "-" in the file columns.

-json prints instead:
  {"liveupdate_num": N,
   "sessions": [{"name": S, "files": [{"token": "0x..", "handler": S,
       "data": "0x..", "memfd": {"size": N, "position": N, "pages": N,
       "seals": N (memfd-v2 only)}}]}],
   "flbs": [{"name": S, "data": "0x..", "count": N}]}
"memfd" is left out for files of other handlers; lists are never null.

Memfds are decoded in order as if every file were retrieved, each preserved
page restored once, as the next kernel does: a memfd whose pages an earlier
file or LUO's own session blocks took is corrupt.

A corrupt image fails (exit status 1) with the physical address (and file
offset) of what is wrong and the rule it breaks.
`

// ImageReport is what inspect finds in an image; its JSON form is the
// output of inspect -json.
type ImageReport struct {
	LiveupdateNum uint64          `json:"liveupdate_num"`
	Sessions      []SessionReport `json:"sessions"`
	FLBs          []FLBReport     `json:"flbs"`
}

// SessionReport is one preserved session.
type SessionReport struct {
	Name  string       `json:"name"`
	Files []FileReport `json:"files"`
}

// FileReport is one preserved file.
type FileReport struct {
	Token   string       `json:"token"`   // hex, "0x2a"
	Handler string       `json:"handler"` // compatible string, "memfd-v2"
	Data    string       `json:"data"`    // the handler's handle, hex
	Memfd   *MemfdReport `json:"memfd,omitempty"`
}

// MemfdReport is a preserved memfd's state.
type MemfdReport struct {
	Size     uint64  `json:"size"`
	Position uint64  `json:"position"`
	Pages    int     `json:"pages"`           // folios holding a page (PFN not 0)
	Seals    *uint32 `json:"seals,omitempty"` // memfd-v2 only
}

// FLBReport is one preserved file-lifecycle-bound object.
type FLBReport struct {
	Name  string `json:"name"`
	Data  string `json:"data"`
	Count uint64 `json:"count"`
}

func runInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect")
	asJSON := fs.Bool("json", false, "print a JSON document instead of the table")
	pos, err := parseFlags(fs, args, inspectUsage, stdout)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 0:
		return usagef("inspect needs the IMAGE file to decode: luoctl inspect [-json] IMAGE")
	case 1:
	default:
		return usagef("inspect takes one IMAGE, got %d arguments: %s", len(pos), strings.Join(pos, " "))
	}
	rep, err := InspectFile(pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return writeImageReport(stdout, rep)
}

// InspectFile reads and decodes the image file at path.
func InspectFile(path string) (*ImageReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := kho.ReadImage(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		if errors.Is(err, kho.ErrImageFormat) {
			return nil, fmt.Errorf("%s: not a valid image: %w%s", path, err, sizeNote(f))
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	rep, err := InspectImage(img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// Image container layout (see package kho): a 32-byte header, then per
// page its PA (8 bytes) and its 4096 bytes.
const (
	imageHeaderLen = 32
	imageRecordLen = 8 + kho.PageSize
)

// sizeNote compares the file's size with what its header announces, which
// locates a truncated or overlong image.
func sizeNote(f *os.File) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	var hdr [imageHeaderLen]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil || string(hdr[:8]) != kho.ImageMagic {
		return fmt.Sprintf(" (the file is %d bytes)", fi.Size())
	}
	n := binary.LittleEndian.Uint64(hdr[24:])
	if n > kho.MaxImagePages {
		return ""
	}
	want := int64(imageHeaderLen) + int64(n)*imageRecordLen
	if want == fi.Size() {
		return ""
	}
	return fmt.Sprintf(" (the file is %d bytes; its header says %d pages, which take %d bytes)", fi.Size(), n, want)
}

// CorruptError reports preserved state that breaks a rule of the ABI.
type CorruptError struct {
	What   string           // what was being decoded
	Offset int64            // file offset of the bad byte, -1 when its PA is not in the image
	Err    *kho.DecodeError // PA, rule, errno
}

func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "corrupt %s at PA %#x", e.What, e.Err.PA)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " (file offset %#x)", e.Offset)
	}
	fmt.Fprintf(&b, ": %s", e.Err.Rule)
	if e.Err.Err != nil && !errors.Is(e.Err.Err, kho.ErrBadAddress) {
		fmt.Fprintf(&b, " (%v)", e.Err.Err)
	}
	return b.String()
}

func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(img *kho.Image, what string, err error) error {
	var de *kho.DecodeError
	if !errors.As(err, &de) {
		return fmt.Errorf("decoding %s: %w", what, err)
	}
	return &CorruptError{What: what, Offset: fileOffset(img.Mem, de.PA), Err: de}
}

// fileOffset returns where the byte at pa lies in the image file, or -1.
func fileOffset(m *kho.Memory, pa uint64) int64 {
	addrs := m.PageAddrs()
	page := pa &^ (kho.PageSize - 1)
	i := sort.Search(len(addrs), func(i int) bool { return addrs[i] >= page })
	if i == len(addrs) || addrs[i] != page {
		return -1
	}
	return imageHeaderLen + int64(i)*imageRecordLen + 8 + int64(pa-page)
}

// InspectImage decodes the LUO state of img, and the state of every memfd
// in it, as the next kernel restores them when every file is retrieved in
// order: each preserved page once (kho.Restorer), so a memfd whose pages
// another file or LUO's session blocks already took is corrupt. Its work is
// linear in the image's size.
func InspectImage(img *kho.Image) (*ImageReport, error) {
	st, err := kho.ReadLUO(img.Mem, img.Root)
	if err != nil {
		return nil, corrupt(img, "LUO state", err)
	}
	rs := kho.NewRestorer(img.Mem)
	rs.RestoreLUO(img.Root)
	rep := &ImageReport{LiveupdateNum: st.LiveupdateNum, Sessions: []SessionReport{}, FLBs: []FLBReport{}}
	for _, s := range st.Sessions {
		sr := SessionReport{Name: s.Name, Files: []FileReport{}}
		for _, f := range s.Files {
			fr := FileReport{Token: hex(f.Token), Handler: f.Compatible, Data: hex(f.Data)}
			if f.Compatible == kho.MemfdV1 || f.Compatible == kho.MemfdV2 {
				ms, err := rs.ReadMemfd(f.Compatible, f.Data)
				if err != nil {
					return nil, corrupt(img, fmt.Sprintf("%s state of session %q token %s", f.Compatible, s.Name, hex(f.Token)), err)
				}
				mr := &MemfdReport{Size: ms.Size, Position: ms.Pos}
				for _, fo := range ms.Folios {
					if fo.PFN != 0 {
						mr.Pages++
					}
				}
				if f.Compatible == kho.MemfdV2 {
					seals := ms.Seals
					mr.Seals = &seals
				}
				fr.Memfd = mr
			}
			sr.Files = append(sr.Files, fr)
		}
		rep.Sessions = append(rep.Sessions, sr)
	}
	for _, f := range st.FLBs {
		rep.FLBs = append(rep.FLBs, FLBReport{Name: f.Name, Data: hex(f.Data), Count: f.Count})
	}
	return rep, nil
}

func hex(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// writeImageReport prints rep as a table.
func writeImageReport(w io.Writer, rep *ImageReport) error {
	var sb strings.Builder
	nfiles := 0
	for _, s := range rep.Sessions {
		nfiles += len(s.Files)
	}
	fmt.Fprintf(&sb, "liveupdate number: %d\n", rep.LiveupdateNum)
	fmt.Fprintf(&sb, "sessions: %d, files: %d\n\n", len(rep.Sessions), nfiles)
	tw := tabwriter.NewWriter(&sb, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tTOKEN\tHANDLER\tSIZE\tPOSITION\tPAGES")
	for _, s := range rep.Sessions {
		if len(s.Files) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\n", cell(s.Name))
		}
		for _, f := range s.Files {
			size, pos, pages := "-", "-", "-"
			if m := f.Memfd; m != nil {
				size, pos, pages = strconv.FormatUint(m.Size, 10), strconv.FormatUint(m.Position, 10), strconv.Itoa(m.Pages)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(s.Name), f.Token, cell(f.Handler), size, pos, pages)
		}
	}
	tw.Flush()
	if len(rep.FLBs) > 0 {
		sb.WriteString("\n")
		tw = tabwriter.NewWriter(&sb, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "FLB\tDATA\tCOUNT")
		for _, f := range rep.FLBs {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", cell(f.Name), f.Data, f.Count)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// cell quotes a name that would not read as one table cell: empty, "-",
// with white space, quotes or unprintable bytes.
func cell(s string) string {
	if s == "" || s == "-" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"'
	}) {
		return strconv.Quote(s)
	}
	return s
}
