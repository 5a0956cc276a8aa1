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
