package solver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// KeyError is an object key that the document may not have: one its Go type
// does not name exactly (encoding/json would match "Program" to "program"),
// or one that appears twice in the same object (encoding/json keeps the last).
// Both would let a document say something other than what a reader, or an
// admission policy, sees in it.
type KeyError struct {
	// Path locates the object holding the key: field names and map keys.
	Path []string
	// Key is the key as written.
	Key string
	// Duplicate is set when Key appears twice, unset when it is unknown.
	Duplicate bool
}

func (e *KeyError) Error() string {
	where := ""
	if len(e.Path) > 0 {
		where = strings.Join(e.Path, ".") + ": "
	}
	if e.Duplicate {
		return fmt.Sprintf("%skey %q appears twice", where, e.Key)
	}
	return fmt.Sprintf("%sunknown key %q", where, e.Key)
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// checkExactKeys walks a JSON document and returns a *KeyError for the first
// duplicate key, or key that the Go type t does not spell exactly in a json
// tag. Values whose type does not expect an object (a json.RawMessage, or a
// type mismatch that decoding reports itself) are still checked for
// duplicates. Syntax errors are left to the decoder.
func checkExactKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	err := walkKeys(dec, t, nil)
	var keyErr *KeyError
	if errors.As(err, &keyErr) {
		return keyErr
	}
	return nil
}

func walkKeys(dec *json.Decoder, t reflect.Type, path []string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	t = derefType(t)
	if delim == '[' {
		var elem reflect.Type
		if t != nil && t != rawMessageType && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walkKeys(dec, elem, path); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	fields, values := objectShape(t)
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return &KeyError{Path: path, Key: key, Duplicate: true}
		}
		seen[key] = true
		valueType := values
		if fields != nil {
			field, known := fields[key]
			if !known {
				return &KeyError{Path: path, Key: key}
			}
			valueType = field
		}
		if err := walkKeys(dec, valueType, append(slices.Clone(path), key)); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

func derefType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// objectShape returns the exact keys a struct allows with their types, or for
// a map nil keys (any key) and the value type. Any other type allows any key.
func objectShape(t reflect.Type) (map[string]reflect.Type, reflect.Type) {
	if t == nil {
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Map:
		return nil, t.Elem()
	case reflect.Struct:
		fields := map[string]reflect.Type{}
		for field := range t.Fields() {
			name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
			if name == "-" || !field.IsExported() {
				continue
			}
			if name == "" {
				name = field.Name
			}
			fields[name] = field.Type
		}
		return fields, nil
	}
	return nil, nil
}
