package bootcfg

import "strings"

// MaxGrubenvSize caps the environment block read. grub-editenv writes exactly
// 1024 bytes (GRUB manual, "Environment block"); anything much larger is not
// an environment block.
const MaxGrubenvSize = 64 << 10

const grubenvSignature = "# GRUB Environment Block\n"

// ParseGrubenv parses a grub environment block (/boot/grub/grubenv): the
// signature line, then name=value lines, padded with '#'. grub-editenv escapes
// '\\' and newline in values with a backslash (grub-core/lib/envblk.c), which
// is undone here. Lines that are not name=value are skipped, like grub does.
func ParseGrubenv(file string, untrustedData []byte) (map[string]string, error) {
	if len(untrustedData) > MaxGrubenvSize {
		return nil, perr(file, 0, ErrTooLarge, "%d bytes, cap %d", len(untrustedData), MaxGrubenvSize)
	}
	s := string(untrustedData)
	if !strings.HasPrefix(s, grubenvSignature) {
		return nil, perr(file, 1, ErrSyntax, "missing the %q signature line: not a grub environment block", strings.TrimSpace(grubenvSignature))
	}
	s = s[len(grubenvSignature):]
	vars := map[string]string{}
	var line strings.Builder
	flush := func() error {
		l := line.String()
		line.Reset()
		if l == "" || l[0] == '#' {
			return nil
		}
		name, value, ok := strings.Cut(l, "=")
		if !ok || !validVarName(name) {
			return nil
		}
		if _, exists := vars[name]; !exists && len(vars) >= MaxVariables {
			return perr(file, 0, ErrTooManyVars, "")
		}
		vars[name] = value
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			line.WriteByte(s[i])
		case c == '\n':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			line.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return vars, nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
