package otp

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"

	qrcode "github.com/skip2/go-qrcode"
)

// QuietZone is the light border around a QR symbol, in modules. ISO/IEC
// 18004:2015 section 9.1 requires 4; phone scanners find the finder
// patterns much less reliably without it, most of all on a black terminal.
const QuietZone = 4

// MaxPNGScale caps the pixels per module WritePNG draws (a version 40
// symbol at 32 px is 5.9 MB of raw pixels; more is never useful).
const MaxPNGScale = 32

// QR is a QR code symbol with its quiet zone, ready to draw.
type QR struct {
	size int    // modules per side, quiet zone included
	dark []bool // size*size, row-major, true = dark module
}

// NewQR encodes text (an otpauth:// URI) as a QR code. It uses error
// correction level M (15%), and level L (7%) when that gives a smaller
// symbol for a long URI: a screen shows a clean image, and a smaller symbol
// is what lets the half-block rendering fit an 80x25 VGA console with room
// for the secret in text below it (ISO/IEC 18004:2015 table 7 gives the
// capacities).
func NewQR(text string) (*QR, error) {
	q, err := encodeQR(text, qrcode.Medium)
	if err != nil {
		return nil, err
	}
	if q.size-2*QuietZone > 37 { // larger than version 5
		if l, err := encodeQR(text, qrcode.Low); err == nil && l.size < q.size {
			q = l
		}
	}
	return q, nil
}

func encodeQR(text string, level qrcode.RecoveryLevel) (q *QR, err error) {
	// go-qrcode calls log.Panic on internal invariant failures; glint runs
	// as PID 1 and must turn even that into an error.
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, fmt.Errorf("QR encoder failed: %v", r)
		}
	}()
	enc, err := qrcode.New(text, level)
	if err != nil {
		return nil, fmt.Errorf("encode %d bytes as a QR code: %w", len(text), err)
	}
	enc.DisableBorder = true
	bits := enc.Bitmap()
	n := len(bits)
	if n == 0 {
		return nil, errors.New("QR encoder returned an empty symbol")
	}
	size := n + 2*QuietZone
	q = &QR{size: size, dark: make([]bool, size*size)}
	for y, row := range bits {
		if len(row) != n {
			return nil, errors.New("QR encoder returned a non-square symbol")
		}
		for x, d := range row {
			q.dark[(y+QuietZone)*size+x+QuietZone] = d
		}
	}
	return q, nil
}

// Size is the number of modules per side, quiet zone included.
func (q *QR) Size() int { return q.size }

// Dark reports whether the module at column x, row y is dark. Outside the
// symbol everything is light (more quiet zone).
func (q *QR) Dark(x, y int) bool {
	if x < 0 || y < 0 || x >= q.size || y >= q.size {
		return false
	}
	return q.dark[y*q.size+x]
}

// Half blocks. The VGA text console's default font (CP437) has them at
// 0xDF, 0xDC and 0xDB, and the kernel's default Unicode map translates
// these code points, so the same output works on a framebuffer console, a
// VGA console and a UTF-8 terminal.
const (
	upperHalf = "▀" // U+2580
	lowerHalf = "▄" // U+2584
	fullBlock = "█" // U+2588
)

// HalfBlocks draws the symbol with two module rows per text line. With
// invert false (for the console default, light text on black), light
// modules are drawn as blocks in the text colour and dark modules are left
// as the black background, so the phone sees dark-on-light as ISO/IEC 18004
// intends; scanners that do not try inverted images fail on the naive
// rendering. Pass invert true for dark text on a light background.
func (q *QR) HalfBlocks(w io.Writer, invert bool) error {
	bw := bufio.NewWriter(w)
	ink := func(x, y int) bool { // true = draw a block here
		if y >= q.size {
			return false // below the symbol: terminal background
		}
		return q.Dark(x, y) == invert
	}
	for y := 0; y < q.size; y += 2 {
		for x := 0; x < q.size; x++ {
			top, bottom := ink(x, y), ink(x, y+1)
			switch {
			case top && bottom:
				bw.WriteString(fullBlock)
			case top:
				bw.WriteString(upperHalf)
			case bottom:
				bw.WriteString(lowerHalf)
			default:
				bw.WriteByte(' ')
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// ASCII draws the symbol with "##" for each module in the text colour and
// two spaces for the background, one text line per module row: for serial
// consoles and dumb terminals without the block characters. It takes
// twice the lines of HalfBlocks.
func (q *QR) ASCII(w io.Writer, invert bool) error {
	bw := bufio.NewWriter(w)
	for y := 0; y < q.size; y++ {
		for x := 0; x < q.size; x++ {
			if q.Dark(x, y) == invert {
				bw.WriteString("##")
			} else {
				bw.WriteString("  ")
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// PNG writes the symbol as a 1-bit PNG image, scale pixels per module,
// black on white.
func (q *QR) PNG(w io.Writer, scale int) error {
	if scale < 1 || scale > MaxPNGScale {
		return fmt.Errorf("PNG scale %d: use 1 to %d pixels per module", scale, MaxPNGScale)
	}
	px := q.size * scale
	img := image.NewPaletted(image.Rect(0, 0, px, px), color.Palette{color.White, color.Black})
	for y := 0; y < px; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+px]
		for x := range row {
			if q.Dark(x/scale, y/scale) {
				row[x] = 1
			}
		}
	}
	return png.Encode(w, img)
}

// RenderHalfBlocks draws text as a QR code for a dark-background terminal
// (the Linux console): see QR.HalfBlocks.
func RenderHalfBlocks(w io.Writer, text string) error {
	q, err := NewQR(text)
	if err != nil {
		return err
	}
	return q.HalfBlocks(w, false)
}

// RenderASCII draws text as a QR code with "##" and "  " for a
// dark-background dumb terminal: see QR.ASCII.
func RenderASCII(w io.Writer, text string) error {
	q, err := NewQR(text)
	if err != nil {
		return err
	}
	return q.ASCII(w, false)
}

// WritePNG writes text as a QR code PNG, scale pixels per module.
func WritePNG(w io.Writer, text string, scale int) error {
	q, err := NewQR(text)
	if err != nil {
		return err
	}
	return q.PNG(w, scale)
}
