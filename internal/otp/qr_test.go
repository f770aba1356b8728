package otp

import (
	"bufio"
	"bytes"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
)

// The QR tests decode what glint draws with an independent decoder
// (gozxing, a port of ZXing, the library behind most Android scanners), so
// they fail if the drawing is wrong, inverted, or lacks a quiet zone.

var testURIs = []string{
	"otpauth://totp/glint:ThinkPad%20X230%20PF0ABCDE?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=glint",
	"otpauth://hotp/glint:x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=glint&digits=8&counter=0",
	"otpauth://totp/glint:" + strings.Repeat("Very%20Long%20Product%20Name%20", 4) + "?secret=" +
		strings.Repeat("GEZDGNBVGY3TQOJQ", 8) + "&issuer=glint&algorithm=SHA512",
}

// terminal is how a black terminal shows text: the text colour (light)
// where a glyph has ink, black elsewhere, with a black margin around.
const termMargin = 6

func decode(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// No hints: gozxing treats the mere presence of PURE_BARCODE as "true",
	// and a pure-barcode decode would skip the finder-pattern search a
	// phone has to do.
	res, err := gzqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("gozxing could not read the rendered QR code: %v", err)
	}
	return res.GetText()
}

// upscale turns a module grid (true = light) into an image, scale px per module.
func upscale(light [][]bool, scale int) image.Image {
	h := len(light)
	w := 0
	for _, r := range light {
		w = max(w, len(r))
	}
	img := image.NewGray(image.Rect(0, 0, (w+2*termMargin)*scale, (h+2*termMargin)*scale))
	for y, r := range light {
		for x, l := range r {
			if !l {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				for dx := 0; dx < scale; dx++ {
					img.SetGray((x+termMargin)*scale+dx, (y+termMargin)*scale+dy, color.Gray{Y: 0xff})
				}
			}
		}
	}
	return img
}

// halfBlocksToModules reads the text back, two module rows per line.
func halfBlocksToModules(t *testing.T, text string) [][]bool {
	t.Helper()
	var rows [][]bool
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		var top, bottom []bool
		for _, r := range sc.Text() {
			switch r {
			case '█':
				top, bottom = append(top, true), append(bottom, true)
			case '▀':
				top, bottom = append(top, true), append(bottom, false)
			case '▄':
				top, bottom = append(top, false), append(bottom, true)
			case ' ':
				top, bottom = append(top, false), append(bottom, false)
			default:
				t.Fatalf("unexpected rune %q in half-block output", r)
			}
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

func TestHalfBlocksRoundTrip(t *testing.T) {
	for _, uri := range testURIs {
		var buf bytes.Buffer
		if err := RenderHalfBlocks(&buf, uri); err != nil {
			t.Fatal(err)
		}
		mods := halfBlocksToModules(t, buf.String())
		q, _ := NewQR(uri)
		if lines := strings.Count(buf.String(), "\n"); lines != (q.Size()+1)/2 {
			t.Errorf("%d lines for %d modules", lines, q.Size())
		}
		// The first and last QuietZone rows and columns are light (blocks).
		for i := 0; i < QuietZone; i++ {
			for x := 0; x < q.Size(); x++ {
				if !mods[i][x] || !mods[q.Size()-1-i][x] || !mods[x][i] || !mods[x][q.Size()-1-i] {
					t.Fatalf("quiet zone not light at ring %d, position %d", i, x)
				}
			}
		}
		if got := decode(t, upscale(mods, 4)); got != uri {
			t.Errorf("decoded %q, want %q", got, uri)
		}
	}
}

func TestHalfBlocksFitVGAConsole(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderHalfBlocks(&buf, testURIs[0]); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) > 23 || len([]rune(lines[0])) > 80 {
		t.Errorf("glint's enrollment QR takes %d lines x %d columns; an 80x25 console needs <= 23 lines to leave room for text",
			len(lines), len([]rune(lines[0])))
	}
}

func TestInvertedHalfBlocks(t *testing.T) {
	q, err := NewQR(testURIs[0])
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := q.HalfBlocks(&buf, true); err != nil {
		t.Fatal(err)
	}
	// On a light terminal the ink is dark: invert the read-back grid.
	mods := halfBlocksToModules(t, buf.String())
	for y := range mods {
		for x := range mods[y] {
			mods[y][x] = !mods[y][x]
		}
	}
	if got := decode(t, upscale(mods[:q.Size()], 4)); got != testURIs[0] {
		t.Errorf("decoded %q", got)
	}
}

func TestASCIIRoundTrip(t *testing.T) {
	for _, uri := range testURIs {
		var buf bytes.Buffer
		if err := RenderASCII(&buf, uri); err != nil {
			t.Fatal(err)
		}
		var mods [][]bool
		for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			if len(line)%2 != 0 {
				t.Fatalf("odd line length %d", len(line))
			}
			var row []bool
			for i := 0; i < len(line); i += 2 {
				switch line[i : i+2] {
				case "##":
					row = append(row, true)
				case "  ":
					row = append(row, false)
				default:
					t.Fatalf("unexpected cell %q", line[i:i+2])
				}
			}
			mods = append(mods, row)
		}
		if got := decode(t, upscale(mods, 3)); got != uri {
			t.Errorf("decoded %q, want %q", got, uri)
		}
	}
}

func TestPNGRoundTrip(t *testing.T) {
	for _, uri := range testURIs {
		var buf bytes.Buffer
		if err := WritePNG(&buf, uri, 4); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		q, _ := NewQR(uri)
		if img.Bounds().Dx() != q.Size()*4 {
			t.Errorf("PNG is %d px wide, want %d", img.Bounds().Dx(), q.Size()*4)
		}
		if got := decode(t, img); got != uri {
			t.Errorf("decoded %q, want %q", got, uri)
		}
	}
	if err := WritePNG(&bytes.Buffer{}, testURIs[0], 0); err == nil {
		t.Error("scale 0 accepted")
	}
	if err := WritePNG(&bytes.Buffer{}, testURIs[0], MaxPNGScale+1); err == nil {
		t.Error("scale above MaxPNGScale accepted")
	}
}

func TestQRTooLong(t *testing.T) {
	if _, err := NewQR(strings.Repeat("x", 4000)); err == nil {
		t.Error("4000 bytes accepted; a QR code holds at most 2953")
	}
}

func BenchmarkRenderHalfBlocks(b *testing.B) {
	for b.Loop() {
		if err := RenderHalfBlocks(&bytes.Buffer{}, testURIs[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNaiveRenderingFails shows why light modules are the ink: the
// common rendering (dark modules as blocks) on a black terminal is an
// inverted symbol, which this decoder, like many phone scanners, cannot
// read. It also proves the round-trip tests above can fail.
func TestNaiveRenderingFails(t *testing.T) {
	q, err := NewQR(testURIs[0])
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := q.HalfBlocks(&buf, true); err != nil { // dark modules as ink
		t.Fatal(err)
	}
	mods := halfBlocksToModules(t, buf.String()) // as a black terminal shows it
	bmp, err := gozxing.NewBinaryBitmapFromImage(upscale(mods, 4))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := gzqr.NewQRCodeReader().Decode(bmp, nil); err == nil {
		t.Errorf("inverted rendering decoded as %q; the test decoder reads inverted codes, so the round trips prove less", res.GetText())
	}
}
