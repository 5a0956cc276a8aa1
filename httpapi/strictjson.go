package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"allot/actors/domain"
)

// encoding/json takes the last of duplicate keys and matches field names
// case-insensitively, so `{"capacity":1,"Capacity":5}` would mean 5 to us
// and possibly 1 to a proxy or a log reader in front of us. checkStrict
// refuses both, in one pass over a body that already decoded cleanly. It
// scans the bytes itself instead of using json.Decoder.Token, which boxes
// every token: on a reserve body this pass allocates once.

// jsonShape is what a decode target allows at one level: the exact field
// names of a struct (with the shape of each), or the shape of the values
// of a map or the elements of a slice. A nil *jsonShape allows any names
// (duplicate keys are refused at every depth all the same).
type jsonShape struct {
	fields map[string]*jsonShape // struct
	elem   *jsonShape            // map, slice, array
}

// shapes caches the shape of every decode target type; like encoding/json's
// own type cache it holds nothing but what the types say.
var shapes sync.Map // reflect.Type -> *jsonShape

func shapeOf(t reflect.Type) *jsonShape {
	if s, ok := shapes.Load(t); ok {
		return s.(*jsonShape)
	}
	s := buildShape(t, 0)
	shapes.Store(t, s)
	return s
}

func buildShape(t reflect.Type, depth int) *jsonShape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if depth > 16 {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &jsonShape{fields: map[string]*jsonShape{}}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			if tag, ok := f.Tag.Lookup("json"); ok {
				if tag == "-" {
					continue
				}
				if n, _, _ := strings.Cut(tag, ","); n != "" {
					name = n
				}
			}
			s.fields[name] = buildShape(f.Type, depth+1)
		}
		return s
	case reflect.Map, reflect.Slice, reflect.Array:
		return &jsonShape{elem: buildShape(t.Elem(), depth+1)}
	}
	return nil
}

// checkStrict refuses duplicate keys at any depth of data and, where v's
// type names the fields, keys that match a field only when case is
// ignored. data must be one valid JSON value (decodeJSON checked it).
func checkStrict(data []byte, v any) error {
	sc := strictScanner{data: data}
	sc.path = sc.pathBuf[:0]
	return sc.value(shapeOf(reflect.TypeOf(v)))
}

// strictScanner walks valid JSON. Paths for error messages are rendered
// only when there is an error to report.
type strictScanner struct {
	data    []byte
	i       int
	path    []pathStep // from the root to the value being scanned
	pathBuf [8]pathStep
}

// pathStep is one step from the body's root: a key, or an index when key
// is nil.
type pathStep struct {
	key   []byte
	index int
}

// pathString renders the path, e.g. inventory[0].from.
func (sc *strictScanner) pathString() string {
	var b strings.Builder
	for _, st := range sc.path {
		switch {
		case st.key == nil:
			b.WriteString("[" + strconv.Itoa(st.index) + "]")
		case b.Len() > 0:
			b.WriteByte('.')
			fallthrough
		default:
			b.Write(st.key)
		}
	}
	return b.String()
}

func (sc *strictScanner) ws() {
	for sc.i < len(sc.data) {
		switch sc.data[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

func (sc *strictScanner) value(s *jsonShape) error {
	sc.ws()
	if sc.i >= len(sc.data) {
		return errStrictSyntax
	}
	var elem *jsonShape
	if s != nil {
		elem = s.elem
	}
	switch sc.data[sc.i] {
	case '{':
		return sc.object(s, elem)
	case '[':
		sc.i++
		for n := 0; ; n++ {
			sc.ws()
			if sc.i < len(sc.data) && sc.data[sc.i] == ']' {
				sc.i++
				return nil
			}
			if n > 0 {
				if sc.i >= len(sc.data) || sc.data[sc.i] != ',' {
					return errStrictSyntax
				}
				sc.i++
			}
			sc.path = append(sc.path, pathStep{index: n})
			if err := sc.value(elem); err != nil {
				return err
			}
			sc.path = sc.path[:len(sc.path)-1]
		}
	case '"':
		_, _, err := sc.str()
		return err
	default: // number, true, false, null
		for sc.i < len(sc.data) && !bytes.ContainsRune([]byte(" \t\r\n,]}"), rune(sc.data[sc.i])) {
			sc.i++
		}
		return nil
	}
}

func (sc *strictScanner) object(s, elem *jsonShape) error {
	sc.i++ // '{'
	var seenBuf [12][]byte
	seen := seenBuf[:0]
	for n := 0; ; n++ {
		sc.ws()
		if sc.i < len(sc.data) && sc.data[sc.i] == '}' {
			sc.i++
			return nil
		}
		if n > 0 {
			if sc.i >= len(sc.data) || sc.data[sc.i] != ',' {
				return errStrictSyntax
			}
			sc.i++
			sc.ws()
		}
		key, escaped, err := sc.str()
		if err != nil {
			return err
		}
		if escaped { // rare: compare what encoding/json compares
			var k string
			if json.Unmarshal(key, &k) != nil {
				return errStrictSyntax
			}
			key = []byte(k)
		} else {
			key = key[1 : len(key)-1]
		}
		sc.path = append(sc.path, pathStep{key: key})
		for _, k := range seen {
			if bytes.Equal(k, key) {
				return fmt.Errorf("malformed JSON body: duplicate key %q: %w", sc.pathString(), domain.ErrInvalidArgument)
			}
		}
		seen = append(seen, key)
		next := elem
		if s != nil && s.fields != nil {
			f, ok := s.fields[string(key)]
			if !ok {
				return sc.wrongCase(s, key)
			}
			next = f
		}
		sc.ws()
		if sc.i >= len(sc.data) || sc.data[sc.i] != ':' {
			return errStrictSyntax
		}
		sc.i++
		if err := sc.value(next); err != nil {
			return err
		}
		sc.path = sc.path[:len(sc.path)-1]
	}
}

// str scans a string and returns it with its quotes, and whether it holds
// an escape.
func (sc *strictScanner) str() (raw []byte, escaped bool, err error) {
	if sc.i >= len(sc.data) || sc.data[sc.i] != '"' {
		return nil, false, errStrictSyntax
	}
	start := sc.i
	for sc.i++; sc.i < len(sc.data); sc.i++ {
		switch sc.data[sc.i] {
		case '\\':
			escaped = true
			sc.i++
		case '"':
			sc.i++
			return sc.data[start:sc.i], escaped, nil
		}
	}
	return nil, false, errStrictSyntax
}

// wrongCase is the error for a key that decoded although it is no exact
// field name: encoding/json matched it ignoring case.
func (sc *strictScanner) wrongCase(s *jsonShape, key []byte) error {
	want := ""
	for name := range s.fields {
		if strings.EqualFold(name, string(key)) {
			want = name
		}
	}
	return fmt.Errorf("malformed JSON body: field %q: names are case-sensitive, want %q: %w",
		sc.pathString(), want, domain.ErrInvalidArgument)
}

// errStrictSyntax cannot happen after a clean decode; it is here so that
// the scanner never reads past what it checked.
var errStrictSyntax = fmt.Errorf("malformed JSON body: %w", domain.ErrInvalidArgument)
