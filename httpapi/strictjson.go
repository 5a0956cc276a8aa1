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
// case-insensitively, so `{"capacity":1,"Capacity":5}` would mean 5 to
// us and possibly 1 to a proxy or a log reader in front of us. checkStrict
// refuses both in a token pass over a body that already decoded cleanly.

// jsonShape is what a decode target allows at one level: the exact field
// names of a struct (with the shape of each), or the shape of the values
// of a map or the elements of a slice. A nil *jsonShape allows anything
// (but duplicate keys are refused at every depth all the same).
type jsonShape struct {
	fields map[string]*jsonShape // struct
	folded map[string]string     // struct: lower-cased name -> exact name
	elem   *jsonShape            // map, slice, array, pointer to one
}

// shapes caches the shape of every decode target type.
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
		s := &jsonShape{fields: map[string]*jsonShape{}, folded: map[string]string{}}
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
			s.folded[strings.ToLower(name)] = name
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
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are skipped, not parsed
	return walkStrict(dec, shapeOf(reflect.TypeOf(v)), "")
}

func walkStrict(dec *json.Decoder, s *jsonShape, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON body: %v: %w", err, domain.ErrInvalidArgument)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	var elem *jsonShape
	if s != nil {
		elem = s.elem
	}
	switch d {
	case '[':
		for i := 0; dec.More(); i++ {
			if err := walkStrict(dec, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case '{':
		var seen []string // objects in our bodies are small: a scan beats a map
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("malformed JSON body: %v: %w", err, domain.ErrInvalidArgument)
			}
			key, _ := kt.(string)
			name := key
			if path != "" {
				name = path + "." + key
			}
			for _, k := range seen {
				if k == key {
					return fmt.Errorf("malformed JSON body: duplicate key %q: %w", name, domain.ErrInvalidArgument)
				}
			}
			seen = append(seen, key)
			next := elem
			if s != nil && s.fields != nil {
				f, exact := s.fields[key]
				if !exact {
					if want, ok := s.folded[strings.ToLower(key)]; ok {
						return fmt.Errorf("malformed JSON body: field %q: names are case-sensitive, want %q: %w",
							name, want, domain.ErrInvalidArgument)
					}
				}
				next = f
			}
			if err := walkStrict(dec, next, name); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
