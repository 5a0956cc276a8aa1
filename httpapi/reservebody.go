package httpapi

// decodeReserveBody decodes the body of a reserve into body exactly as
// decodeJSON does. A flash crowd's bodies are tiny and plain
// ({"quantity":1}), and encoding/json's reflection plus the strict pass
// were a fifth of the rejection path's time, so a hand scan takes those;
// everything else (escapes, non-ASCII, fractions or exponents, null,
// unknown, repeated or wrongly cased keys, malformed JSON) goes to
// decodeJSON, so that what is accepted, and every error, stay as they were.
func decodeReserveBody(data []byte, body *reserveBody) error {
	if plainReserveBody(data, body) {
		return nil
	}
	// A copy for encoding/json, so that only this path puts one on the
	// heap.
	v := *body
	err := decodeJSON(data, &v)
	*body = v
	return err
}

// plainReserveBody sets body and reports true when data is a JSON object
// of at most the three exact keys, each once, with an integer quantity of
// at most 18 digits and dates of printable ASCII without escapes. It
// leaves body alone when it reports false.
func plainReserveBody(data []byte, body *reserveBody) bool {
	sc := plainScanner{data: data}
	out := *body
	sc.ws()
	if !sc.byte('{') {
		return false
	}
	sc.ws()
	var seen [3]bool
	for n := 0; !sc.byte('}'); n++ {
		if n > 0 {
			if !sc.byte(',') {
				return false
			}
			sc.ws()
		}
		key, ok := sc.plainString()
		if !ok {
			return false
		}
		sc.ws()
		if !sc.byte(':') {
			return false
		}
		sc.ws()
		var field int
		switch string(key) { // no allocation: compared in place
		case "quantity":
			field = 0
			if out.Quantity, ok = sc.integer(); !ok {
				return false
			}
		case "check_in":
			field = 1
			s, ok := sc.plainString()
			if !ok {
				return false
			}
			out.CheckIn = string(s)
		case "check_out":
			field = 2
			s, ok := sc.plainString()
			if !ok {
				return false
			}
			out.CheckOut = string(s)
		default:
			return false
		}
		if seen[field] {
			return false
		}
		seen[field] = true
		sc.ws()
	}
	sc.ws()
	if sc.i != len(sc.data) {
		return false
	}
	*body = out
	return true
}

// plainScanner reads the plain subset of JSON that plainReserveBody takes.
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
