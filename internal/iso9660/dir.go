package iso9660

import (
	"encoding/binary"
	"io/fs"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Directory record flags, ECMA-119 9.1.6.
const (
	flagHidden     = 0x01
	flagDir        = 0x02
	flagMultiExent = 0x80
)

// record is one directory record as read, before names are chosen.
type record struct {
	lba       uint32 // extent location (first block of the data)
	size      uint32 // data length of this extent
	dir       bool
	multi     bool // more records of the same file follow (9.1.6 bit 7)
	mtime     time.Time
	rawName   []byte // file identifier as stored
	extAttr   uint8  // extended attribute record length, in blocks
	interlace bool   // file unit size or interleave gap set
	off       int64  // where the record is in the image, for errors
	su        []byte // system use field
}

// parseRecord decodes one directory record (ECMA-119 9.1) from b, whose
// first byte is its length and which holds exactly that many bytes.
func parseRecord(b []byte, off int64) (record, error) {
	if len(b) < 34 || int(b[0]) > len(b) || b[0] < 34 {
		return record{}, errorf(off, "directory record length", ErrMalformed, "%d bytes", len(b))
	}
	b = b[:b[0]]
	nameLen := int(b[32])
	if 33+nameLen > len(b) {
		return record{}, errorf(off+32, "file identifier length", ErrMalformed, "%d bytes in a record of %d", nameLen, len(b))
	}
	r := record{
		lba:       binary.LittleEndian.Uint32(b[2:6]),
		size:      binary.LittleEndian.Uint32(b[10:14]),
		dir:       b[25]&flagDir != 0,
		multi:     b[25]&flagMultiExent != 0,
		extAttr:   b[1],
		interlace: b[26] != 0 || b[27] != 0,
		rawName:   b[33 : 33+nameLen],
		off:       off,
		su:        systemUse(b),
	}
	r.mtime = recordTime(b[18:25])
	return r, nil
}

// systemUse returns the system use field of a record (ECMA-119 9.1.13):
// what follows the identifier and its padding byte.
func systemUse(rec []byte) []byte {
	if len(rec) < 34 {
		return nil
	}
	n := int(rec[32])
	start := 33 + n
	if n%2 == 0 {
		start++ // padding field (9.1.12)
	}
	if start >= len(rec) {
		return nil
	}
	return rec[start:]
}

// recordTime decodes the 7-byte recording date (ECMA-119 9.1.5); a zero
// or impossible date is the zero time.
func recordTime(b []byte) time.Time {
	if b[0] == 0 || b[1] == 0 || b[1] > 12 || b[2] == 0 || b[2] > 31 || b[3] > 23 || b[4] > 59 || b[5] > 59 {
		return time.Time{}
	}
	tz := int(int8(b[6]))
	if tz < -48 || tz > 52 {
		tz = 0
	}
	loc := time.FixedZone("", tz*15*60)
	return time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, loc).UTC()
}

// entry is one name in a directory as this FS shows it.
type entry struct {
	name    string
	mode    fs.FileMode
	size    int64
	extents []extent // data of a file; the directory's own extent for a dir
	mtime   time.Time
	target  string // symlink target (Rock Ridge SL)
	off     int64  // first record's offset, for errors
	// unsupported is set for files this package cannot read (interleaved,
	// extended attributes); they are listed, opening them fails.
	unsupported string
}

type extent struct {
	lba  uint32
	size uint32
}

// maxCachedEntries bounds the directory entries FS keeps decoded, so
// resolving paths does not re-read the same directories from a slow USB
// stick, and a crafted image cannot grow the cache without bound.
const maxCachedEntries = 1 << 18

// readDir returns the decoded directory whose extent is d, named path (for
// errors), from the cache or the image.
func (f *FS) readDir(d extent, path string) ([]entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ents, ok := f.cache[d]; ok {
		return ents, nil
	}
	ents, err := f.decodeDir(d, path)
	if err != nil {
		return nil, err
	}
	if f.cached+len(ents) > maxCachedEntries {
		f.cache, f.cached = nil, 0
	}
	if f.cache == nil {
		f.cache = map[extent][]entry{}
	}
	f.cache[d] = ents
	f.cached += len(ents)
	return ents, nil
}

// decodeDir reads and decodes one directory extent.
func (f *FS) decodeDir(d extent, path string) ([]entry, error) {
	if d.size > MaxDirSize {
		e := errorf(int64(d.lba)*SectorSize, "directory size", ErrTooLarge, "%d bytes (cap %d)", d.size, MaxDirSize)
		e.Path = path
		return nil, e
	}
	off, err := f.extentRange(d.lba, d.size, "directory extent", path)
	if err != nil {
		return nil, err
	}
	data, err := f.readAt(off, int64(d.size), "directory extent")
	if err != nil {
		return nil, err
	}
	var out []entry
	var pending *entry // a multi-extent file still collecting records
	seen := map[string]bool{}
	for pos := 0; pos < len(data); {
		n := int(data[pos])
		if n == 0 {
			// Records never cross a sector boundary (9.1); the rest of
			// this sector is padding.
			pos = (pos/SectorSize + 1) * SectorSize
			continue
		}
		recOff := off + int64(pos)
		if pos+n > len(data) || (pos%SectorSize)+n > SectorSize {
			e := errorf(recOff, "directory record length", ErrMalformed, "%d bytes cross the sector or directory end", n)
			e.Path = path
			return nil, e
		}
		r, err := parseRecord(data[pos:pos+n], recOff)
		if err != nil {
			err.(*ParseError).Path = path
			return nil, err
		}
		pos += n
		// "." and ".." are identifiers 0x00 and 0x01 (9.1.11); the first
		// two records of every directory.
		if len(r.rawName) == 1 && r.rawName[0] <= 1 {
			continue
		}
		e, keep, err := f.decodeEntry(r, path)
		if err != nil {
			return nil, err
		}
		if !keep {
			continue
		}
		if pending != nil {
			if pending.name != e.name || e.mode.IsDir() {
				pe := errorf(recOff, "multi-extent file", ErrMalformed, "%q does not continue %q", e.name, pending.name)
				pe.Path = path
				return nil, pe
			}
			if len(pending.extents) >= MaxFileExtents {
				pe := errorf(recOff, "multi-extent file", ErrTooLarge, "%q has more than %d extents", e.name, MaxFileExtents)
				pe.Path = path
				return nil, pe
			}
			pending.extents = append(pending.extents, e.extents...)
			pending.size += e.size
			if !r.multi {
				out = append(out, *pending)
				pending = nil
			}
			continue
		}
		if seen[e.name] {
			pe := errorf(recOff, "file identifier", ErrMalformed, "%q appears twice in one directory", e.name)
			pe.Path = path
			return nil, pe
		}
		seen[e.name] = true
		if len(out) >= MaxDirEntries {
			pe := errorf(recOff, "directory", ErrTooLarge, "more than %d entries", MaxDirEntries)
			pe.Path = path
			return nil, pe
		}
		if r.multi && !e.mode.IsDir() {
			p := e
			pending = &p
			continue
		}
		out = append(out, e)
	}
	if pending != nil {
		e := errorf(pending.off, "multi-extent file", ErrMalformed, "%q: its last record is missing", pending.name)
		e.Path = path
		return nil, e
	}
	return out, nil
}

// decodeEntry turns a record into the entry this FS shows: its name and
// type from Rock Ridge (when used), Joliet or plain ISO 9660. keep is false
// for entries that are not shown (Rock Ridge RE: relocated directories
// appear at their CL placeholder instead).
func (f *FS) decodeEntry(r record, dirPath string) (entry, bool, error) {
	e := entry{
		size:    int64(r.size),
		extents: []extent{{r.lba, r.size}},
		mtime:   r.mtime,
		off:     r.off,
	}
	if r.dir {
		e.mode = fs.ModeDir | 0o555
	} else {
		e.mode = 0o444
	}
	if r.interlace {
		e.unsupported = "interleaved file"
	} else if r.extAttr != 0 {
		e.unsupported = "extended attribute record"
	}
	var name string
	var err error
	switch {
	case f.rockRidge:
		var rr rrInfo
		rr, err = f.parseSUSP(r.su, f.suspSkip, r.off, dirPath)
		if err != nil {
			return e, false, err
		}
		if rr.relocated {
			return e, false, nil
		}
		if rr.childLink != nil {
			if r.dir {
				return e, false, f.rrErr(r.off, dirPath, "CL entry on a directory record")
			}
			e.mode = fs.ModeDir | 0o555
			e.size = int64(rr.childLink.size)
			e.extents = []extent{*rr.childLink}
			e.unsupported = ""
		}
		if rr.hasMode {
			switch {
			case rr.mode&0o170000 == 0o120000:
				if r.dir || rr.childLink != nil {
					return e, false, f.rrErr(r.off, dirPath, "PX says symlink but the record is a directory")
				}
				e.mode = fs.ModeSymlink | fs.FileMode(rr.mode&0o777)
			case rr.mode&0o170000 == 0o040000:
				if !e.mode.IsDir() {
					return e, false, f.rrErr(r.off, dirPath, "PX says directory but the record is a file")
				}
				e.mode = fs.ModeDir | fs.FileMode(rr.mode&0o777)
			default:
				if e.mode.IsDir() {
					return e, false, f.rrErr(r.off, dirPath, "PX says file but the record is a directory")
				}
				e.mode = fs.FileMode(rr.mode & 0o777)
			}
		}
		if e.mode&fs.ModeSymlink != 0 {
			if !rr.hasLink {
				return e, false, f.rrErr(r.off, dirPath, "symlink without an SL entry")
			}
			e.target = rr.link
			e.size = int64(len(rr.link))
		}
		name = rr.name
		if !rr.hasName {
			name = plainName(r.rawName, r.dir)
		}
	case f.joliet:
		name, err = jolietName(r.rawName)
		if err != nil {
			pe := errorf(r.off+33, "Joliet name", ErrMalformed, "%v", err)
			pe.Path = dirPath
			return e, false, pe
		}
	default:
		name = plainName(r.rawName, r.dir)
	}
	if err := checkName(name); err != nil {
		pe := errorf(r.off+33, "file identifier", ErrMalformed, "%v", err)
		pe.Path = dirPath
		return e, false, pe
	}
	e.name = name
	return e, true, nil
}

func (f *FS) rrErr(off int64, path, msg string) error {
	e := errorf(off, "Rock Ridge", ErrMalformed, "%s", msg)
	e.Path = path
	return e
}

// plainName is the ISO 9660 identifier as Linux shows it with map=normal:
// without the ";1" version, without a trailing "." when there is no
// extension, in lower case.
func plainName(raw []byte, dir bool) string {
	s := string(raw)
	if !dir {
		if i := strings.LastIndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSuffix(s, ".")
	}
	return strings.ToLower(s)
}

// jolietName decodes a UCS-2/UTF-16 big-endian identifier and drops its
// ";1" version.
func jolietName(raw []byte) (string, error) {
	if len(raw)%2 != 0 {
		return "", errString("odd length")
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(raw[2*i:])
	}
	s := string(utf16.Decode(u))
	if i := strings.LastIndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// checkName refuses names that cannot be one path element: empty, ".",
// "..", containing '/' or NUL, not UTF-8, or over the cap.
func checkName(s string) error {
	switch {
	case s == "" || s == "." || s == "..":
		return errString("empty, \".\" or \"..\" name")
	case len(s) > MaxNameLen:
		return errString("name longer than the cap")
	case strings.ContainsAny(s, "/\x00"):
		return errString("name contains '/' or NUL")
	case !utf8.ValidString(s):
		return errString("name is not UTF-8")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }
