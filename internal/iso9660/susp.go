package iso9660

import (
	"encoding/binary"
	"strings"
)

// rrInfo is what the Rock Ridge entries of one directory record say.
type rrInfo struct {
	name      string
	hasName   bool
	mode      uint32
	hasMode   bool
	link      string
	hasLink   bool
	childLink *extent // CL: this placeholder file is a relocated directory
	relocated bool    // RE: this directory is shown at its CL placeholder
	rrSeen    bool    // any RRIP entry (PX, NM, SL, RR, ER): the image uses Rock Ridge
}

// parseSUSP walks the System Use entries of one record (SUSP 1.12 section
// 4), following CE continuation areas, and collects the Rock Ridge entries
// (RRIP 1.12 section 4.1) this package uses.
func (f *FS) parseSUSP(su []byte, skip int, recOff int64, path string) (rrInfo, error) {
	var rr rrInfo
	var name strings.Builder
	nameDone := false
	var linkParts []string
	linkCont := false // the last component continues in the next one
	linkDone := false
	area := su
	if skip > len(area) {
		area = nil
	} else {
		area = area[skip:]
	}
	areaOff := recOff // approximate: for error messages
	continuations := 0
	bad := func(field, format string, a ...any) error {
		e := errorf(areaOff, "Rock Ridge "+field, ErrMalformed, format, a...)
		e.Path = path
		return e
	}
	for {
		var next []byte
		for len(area) >= 4 {
			sig := string(area[0:2])
			n := int(area[2])
			if area[0] == 0 {
				break // padding to the end of the area
			}
			if n < 4 || n > len(area) {
				return rr, bad("entry length", "%q entry of %d bytes in %d remaining", sig, n, len(area))
			}
			data := area[4:n]
			area = area[n:]
			switch sig {
			case "ST": // SUSP 5.4: terminator
				area = nil
			case "CE": // SUSP 5.1: continuation area
				if len(data) < 24 {
					return rr, bad("CE", "short entry")
				}
				continuations++
				if continuations > MaxContinuations {
					e := errorf(areaOff, "Rock Ridge CE", ErrTooLarge, "more than %d continuation areas", MaxContinuations)
					e.Path = path
					return rr, e
				}
				lba := binary.LittleEndian.Uint32(data[0:4])
				off := binary.LittleEndian.Uint32(data[8:12])
				length := binary.LittleEndian.Uint32(data[16:20])
				if off >= SectorSize || length > SectorSize-off {
					return rr, bad("CE", "area of %d bytes at offset %d does not fit in a block", length, off)
				}
				start, err := f.extentRange(lba, off+length, "Rock Ridge CE", path)
				if err != nil {
					return rr, err
				}
				b, err := f.readAt(start+int64(off), int64(length), "Rock Ridge CE")
				if err != nil {
					return rr, err
				}
				next = b
				areaOff = start + int64(off)
			case "NM": // RRIP 4.1.4: alternate name
				rr.rrSeen = true
				if len(data) < 1 {
					return rr, bad("NM", "short entry")
				}
				flags := data[0]
				if flags&0x06 != 0 || nameDone {
					continue // CURRENT/PARENT (for "." and ".."), or after the name ended
				}
				if name.Len()+len(data)-1 > MaxNameLen {
					e := errorf(areaOff, "Rock Ridge NM", ErrTooLarge, "name longer than %d bytes", MaxNameLen)
					e.Path = path
					return rr, e
				}
				name.Write(data[1:])
				rr.hasName = true
				if flags&0x01 == 0 {
					nameDone = true
				}
			case "PX": // RRIP 4.1.1: POSIX file attributes
				rr.rrSeen = true
				if len(data) < 32 {
					return rr, bad("PX", "short entry")
				}
				rr.mode, rr.hasMode = binary.LittleEndian.Uint32(data[0:4]), true
			case "SL": // RRIP 4.1.3: symbolic link
				rr.rrSeen = true
				if len(data) < 1 {
					return rr, bad("SL", "short entry")
				}
				if linkDone {
					continue
				}
				more := data[0]&0x01 != 0
				comps := data[1:]
				for len(comps) > 0 {
					if len(comps) < 2 || 2+int(comps[1]) > len(comps) {
						return rr, bad("SL", "component overruns its entry")
					}
					cflags, content := comps[0], comps[2:2+int(comps[1])]
					comps = comps[2+int(comps[1]):]
					var part string
					switch {
					case cflags&0x02 != 0:
						part = "."
					case cflags&0x04 != 0:
						part = ".."
					case cflags&0x08 != 0:
						part = "" // root: a leading "/" once joined
					default:
						part = string(content)
					}
					if linkCont && len(linkParts) > 0 {
						linkParts[len(linkParts)-1] += part
					} else {
						linkParts = append(linkParts, part)
					}
					linkCont = cflags&0x01 != 0
					if total := len(strings.Join(linkParts, "/")); total > MaxSymlinkLen || len(linkParts) > MaxSymlinkLen {
						e := errorf(areaOff, "Rock Ridge SL", ErrTooLarge, "symlink target longer than %d bytes", MaxSymlinkLen)
						e.Path = path
						return rr, e
					}
				}
				rr.hasLink = true
				if !more {
					linkDone = true
				}
			case "CL": // RRIP 4.1.5.1: child link
				rr.rrSeen = true
				if len(data) < 8 {
					return rr, bad("CL", "short entry")
				}
				ext, err := f.relocatedDir(binary.LittleEndian.Uint32(data[0:4]), path)
				if err != nil {
					return rr, err
				}
				rr.childLink = &ext
			case "RE": // RRIP 4.1.5.3: relocated directory
				rr.rrSeen = true
				rr.relocated = true
			case "RR", "ER":
				rr.rrSeen = true
			}
		}
		if next == nil {
			break
		}
		area = next
	}
	if rr.hasName {
		rr.name = name.String()
	}
	if rr.hasLink {
		rr.link = strings.Join(linkParts, "/")
		if rr.link == "" && len(linkParts) == 1 {
			rr.link = "/"
		}
	}
	return rr, nil
}

// relocatedDir reads the "." record at block lba, the real home of a
// directory that deep-directory relocation moved (RRIP 4.1.5.1), and
// returns its extent.
func (f *FS) relocatedDir(lba uint32, path string) (extent, error) {
	off, err := f.extentRange(lba, SectorSize, "Rock Ridge CL", path)
	if err != nil {
		return extent{}, err
	}
	b, err := f.readAt(off, SectorSize, "Rock Ridge CL")
	if err != nil {
		return extent{}, err
	}
	r, err := parseRecord(b, off)
	if err != nil {
		return extent{}, err
	}
	if !r.dir || len(r.rawName) != 1 || r.rawName[0] != 0 || r.lba != lba {
		e := errorf(off, "Rock Ridge CL", ErrMalformed, "block %d does not start a directory", lba)
		e.Path = path
		return extent{}, e
	}
	return extent{r.lba, r.size}, nil
}
