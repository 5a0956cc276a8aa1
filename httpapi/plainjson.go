package httpapi

// plainScanner reads the plain subset of JSON that the hand scans of the
// hot paths take (plainReserveBody, plainClaims): strings of printable
// ASCII without escapes and integers without fraction or exponent. What it
// cannot read, they leave to encoding/json.
type plainScanner struct {
	data []byte
	i    int
}

// ws skips JSON whitespace.
func (sc *plainScanner) ws() {
	for sc.i < len(sc.data) {
		switch sc.data[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// byte consumes b if it is next.
func (sc *plainScanner) byte(b byte) bool {
	if sc.i < len(sc.data) && sc.data[sc.i] == b {
		sc.i++
		return true
	}
	return false
}

// plainString reads a string of printable ASCII without escapes and
// returns its contents.
func (sc *plainScanner) plainString() ([]byte, bool) {
	if !sc.byte('"') {
		return nil, false
	}
	start := sc.i
	for ; sc.i < len(sc.data); sc.i++ {
		switch ch := sc.data[sc.i]; {
		case ch == '"':
			sc.i++
			return sc.data[start : sc.i-1], true
		case ch == '\\' || ch < 0x20 || ch > 0x7e:
			return nil, false
		}
	}
	return nil, false
}

// integer reads -?(0|[1-9][0-9]*) of at most 18 digits (so it fits an
// int64), not followed by a fraction or an exponent.
func (sc *plainScanner) integer() (int64, bool) {
	neg := sc.byte('-')
	start := sc.i
	var v int64
	for sc.i < len(sc.data) && sc.data[sc.i] >= '0' && sc.data[sc.i] <= '9' {
		v = v*10 + int64(sc.data[sc.i]-'0')
		sc.i++
	}
	digits := sc.i - start
	switch {
	case digits == 0 || digits > 18:
		return 0, false
	case digits > 1 && sc.data[start] == '0': // leading zero: not JSON
		return 0, false
	case sc.i < len(sc.data) && (sc.data[sc.i] == '.' || sc.data[sc.i] == 'e' || sc.data[sc.i] == 'E'):
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}
