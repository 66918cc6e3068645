package fhirpath

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
)

// System type names used in Value.Type for values that are not FHIR
// elements (literals and function results).
const (
	TypeString   = "System.String"
	TypeBoolean  = "System.Boolean"
	TypeInteger  = "System.Integer"
	TypeDecimal  = "System.Decimal"
	TypeDate     = "System.Date"
	TypeDateTime = "System.DateTime"
	TypeTime     = "System.Time"
	TypeQuantity = "System.Quantity"
)

// Value is one item of a FHIRPath collection.
//
// Data is either a decoded JSON value from the resource (map[string]any,
// []any is never an item, string, json.Number, bool) or a system value:
// string (System.String), bool (System.Boolean), int64 (System.Integer),
// json.Number (System.Decimal), Temporal (System.Date, System.DateTime,
// System.Time) or Quantity (System.Quantity).
//
// Type is the FHIR type code when known ("CodeableConcept", "dateTime",
// "Reference", "code", "Observation.component" for a backbone element), the
// resource type for a resource, a System type name (TypeString ...) for a
// system value, or "" when unknown.
type Value struct {
	Data any
	Type string
}

// Quantity is a FHIRPath System.Quantity: a decimal value and a unit (UCUM
// code, or a calendar duration keyword such as "year" or "days").
type Quantity struct {
	Value json.Number
	Unit  string
}

// String returns the FHIRPath literal form, e.g. "5 'mg'".
func (q Quantity) String() string {
	if calendarUnits[q.Unit] != "" {
		return string(q.Value) + " " + q.Unit
	}
	return string(q.Value) + " '" + q.Unit + "'"
}

// calendarUnits maps the calendar duration keywords to their UCUM code.
var calendarUnits = map[string]string{
	"year": "a", "years": "a", "month": "mo", "months": "mo", "week": "wk", "weeks": "wk",
	"day": "d", "days": "d", "hour": "h", "hours": "h", "minute": "min", "minutes": "min",
	"second": "s", "seconds": "s", "millisecond": "ms", "milliseconds": "ms",
}

// fhirPrimitiveSystem maps FHIR primitive type codes to the System type
// they are compared as.
var fhirPrimitiveSystem = map[string]string{
	"boolean": TypeBoolean, "string": TypeString, "code": TypeString, "id": TypeString,
	"markdown": TypeString, "uri": TypeString, "url": TypeString, "canonical": TypeString,
	"oid": TypeString, "uuid": TypeString, "base64Binary": TypeString, "xhtml": TypeString,
	"integer": TypeInteger, "positiveInt": TypeInteger, "unsignedInt": TypeInteger, "integer64": TypeInteger,
	"decimal": TypeDecimal, "date": TypeDate, "dateTime": TypeDateTime, "instant": TypeDateTime,
	"time": TypeTime,
}

// systemKind returns the System type an item behaves as in operators and
// functions, and its value converted to the matching Go representation.
// For FHIR complex types and unknown maps it returns ("", data).
func systemValue(v Value) (string, any) {
	switch d := v.Data.(type) {
	case string:
		switch t := fhirPrimitiveSystem[v.Type]; t {
		case TypeDate, TypeDateTime, TypeTime:
			if tv, ok := parseTemporal(d, t == TypeDateTime); ok {
				return tv.typeName(), tv
			}
			return TypeString, d
		}
		return TypeString, d
	case bool:
		return TypeBoolean, d
	case int64:
		return TypeInteger, d
	case json.Number:
		if v.Type == TypeDecimal || v.Type == "decimal" {
			return TypeDecimal, d
		}
		if i, err := strconv.ParseInt(string(d), 10, 64); err == nil {
			return TypeInteger, i
		}
		return TypeDecimal, d
	case Temporal:
		return d.typeName(), d
	case Quantity:
		return TypeQuantity, d
	case map[string]any:
		if isQuantityType(v.Type) || (v.Type == "" && looksLikeQuantity(d)) {
			if q, ok := quantityFromJSON(d); ok {
				return TypeQuantity, q
			}
		}
	}
	return "", v.Data
}

func isQuantityType(t string) bool {
	switch t {
	case "Quantity", "Age", "Distance", "Duration", "Count", "MoneyQuantity", "SimpleQuantity":
		return true
	}
	return false
}

func looksLikeQuantity(m map[string]any) bool {
	_, ok := m["value"].(json.Number)
	if _, rt := m["resourceType"]; rt {
		return false
	}
	_, c := m["code"]
	_, u := m["unit"]
	return ok && (c || u)
}

// quantityFromJSON converts a FHIR Quantity element. The UCUM code is used
// when the system is UCUM (or absent), the unit text otherwise.
func quantityFromJSON(m map[string]any) (Quantity, bool) {
	n, ok := m["value"].(json.Number)
	if !ok {
		return Quantity{}, false
	}
	unit, _ := m["code"].(string)
	if unit == "" {
		unit, _ = m["unit"].(string)
	}
	if unit == "" {
		unit = "1"
	}
	return Quantity{Value: n, Unit: unit}, true
}

// toRat converts an Integer or Decimal system value.
func toRat(x any) (*big.Rat, bool) {
	switch d := x.(type) {
	case int64:
		return new(big.Rat).SetInt64(d), true
	case json.Number:
		r, ok := new(big.Rat).SetString(string(d))
		return r, ok
	}
	return nil, false
}

// decimalPlaces returns the number of digits after the point of a decimal.
func decimalPlaces(n json.Number) int {
	s := string(n)
	if strings.ContainsAny(s, "eE") {
		return 0
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// ratToDecimal formats r as a decimal with at most 8 fraction digits,
// trimming trailing zeros.
func ratToDecimal(r *big.Rat) json.Number {
	s := r.FloatString(8)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return json.Number(s)
}

// fromJSON wraps a decoded JSON value (a map, string, number or bool) as a
// Value of FHIR type typ; a resource gets its resourceType as type.
func fromJSON(data any, typ string) Value {
	if m, ok := data.(map[string]any); ok {
		if rt, ok := m["resourceType"].(string); ok && rt != "" {
			return Value{Data: m, Type: rt}
		}
	}
	return Value{Data: data, Type: typ}
}

// appendJSON appends a decoded JSON value (possibly an array) to out.
func appendJSON(out []Value, data any, typ string) []Value {
	switch d := data.(type) {
	case nil:
		return out
	case []any:
		for _, e := range d {
			if e != nil {
				out = append(out, fromJSON(e, typ))
			}
		}
		return out
	}
	return append(out, fromJSON(data, typ))
}

// varValues converts an Env variable to a collection.
func varValues(data any) []Value {
	switch d := data.(type) {
	case nil:
		return nil
	case []Value:
		return d
	case Value:
		return []Value{d}
	case string:
		return []Value{{Data: d, Type: TypeString}}
	case bool:
		return []Value{{Data: d, Type: TypeBoolean}}
	case int:
		return []Value{{Data: int64(d), Type: TypeInteger}}
	case int64:
		return []Value{{Data: d, Type: TypeInteger}}
	case float64:
		return []Value{{Data: json.Number(strconv.FormatFloat(d, 'f', -1, 64)), Type: TypeDecimal}}
	case json.Number:
		t, x := systemValue(Value{Data: d})
		return []Value{{Data: x, Type: t}}
	case Temporal:
		return []Value{{Data: d, Type: d.typeName()}}
	case Quantity:
		return []Value{{Data: d, Type: TypeQuantity}}
	case []any:
		var out []Value
		for _, e := range d {
			out = append(out, varValues(e)...)
		}
		return out
	}
	return []Value{fromJSON(data, "")}
}
