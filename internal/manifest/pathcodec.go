package manifest

// EscapePath writes a path or link target the way the manifest does: bytes
// outside printable ASCII, space and backslash become \xHH, so any name fits
// in one space-separated field. internal/rootfs writes its list with it.
func EscapePath(s string) string { return escape(s) }

// UnescapePath reverses EscapePath, accepting only its canonical spelling,
// for paths of at most MaxPathLen bytes.
func UnescapePath(s string) (string, error) { return unescape(s, MaxPathLen) }
