package solver

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestChartSchemaAcceptsEveryKey compares the keys the solver config accepts
// with those the chart's values schema lets through to it, at every level: a
// key the schema lacks renders as a refused install, one the solver lacks as
// a Pod that never starts.
func TestChartSchemaAcceptsEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "charts", "cert-manager-webhook-exec", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	definitions := schema["definitions"].(map[string]any)
	program := definitions["program"].(map[string]any)
	config := schema["properties"].(map[string]any)["config"].(map[string]any)
	tests := map[string]struct {
		solver reflect.Type
		schema map[string]any
		// chartOnly are values keys the chart uses itself, not passed on.
		chartOnly []string
	}{
		"config":      {reflect.TypeFor[fileConfig](), config, []string{"existingConfigMap", "rawMode"}},
		"program":     {reflect.TypeFor[fileProgram](), program, nil},
		"propagation": {reflect.TypeFor[filePropagation](), property(program, "propagation"), nil},
		"rateLimit":   {reflect.TypeFor[fileRateLimit](), property(program, "rateLimit"), nil},
		"breaker":     {reflect.TypeFor[fileBreaker](), property(program, "breaker"), nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var solverKeys []string
			for f := range tc.solver.Fields() {
				solverKeys = append(solverKeys, strings.Split(f.Tag.Get("json"), ",")[0])
			}
			schemaKeys := slices.DeleteFunc(slices.Collect(maps.Keys(tc.schema["properties"].(map[string]any))), func(k string) bool {
				return slices.Contains(tc.chartOnly, k)
			})
			slices.Sort(solverKeys)
			slices.Sort(schemaKeys)
			if !slices.Equal(solverKeys, schemaKeys) {
				t.Errorf("solver config keys %q, chart schema keys %q", solverKeys, schemaKeys)
			}
		})
	}
}

func property(schema map[string]any, name string) map[string]any {
	p, _ := schema["properties"].(map[string]any)[name].(map[string]any)
	return p
}
