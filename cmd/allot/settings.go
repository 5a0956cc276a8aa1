package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// configFlag names the YAML file every other flag may also be set in.
const configFlag = "config"

// envName is the environment variable of a flag: ALLOT_ + upper case, "-" as "_".
func envName(flag string) string {
	return "ALLOT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// parseSettings parses args into fs, then fills every flag not given on the
// command line from its environment variable, then every flag still unset
// from the YAML file named by --config (or ALLOT_CONFIG), if fs has that
// flag: flag > env > file > default. A key of the file that is not a flag of
// fs is an error unless other holds it (a setting of another command, so
// that one file serves both `allot serve` and `allot token`).
func parseSettings(fs *flag.FlagSet, args []string, getenv func(string) (string, bool), other map[string]bool) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		if v, ok := getenv(env); ok && !set[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			set[f.Name] = true
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cf := fs.Lookup(configFlag)
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	file := cf.Value.String()
	values, err := readConfigFile(file)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		switch {
		case k == configFlag:
			return fmt.Errorf("%s: %q cannot be set in the config file itself", file, k)
		case f == nil && other[k]:
			continue
		case f == nil:
			return fmt.Errorf("%s: unknown setting %q (settings are the flag names, e.g. node-id)", file, k)
		case set[k]:
			continue
		}
		if err := fs.Set(k, values[k]); err != nil {
			return fmt.Errorf("%s: %s: %w", file, k, err)
		}
	}
	return nil
}

// readConfigFile reads a YAML mapping of setting names to scalar values (a
// list is joined with commas, as --join takes it) as flag strings.
func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		s, err := settingString(v)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %s: %w", path, k, err)
		}
		out[k] = s
	}
	return out, nil
}

func settingString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", errors.New("has no value")
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int, int64, uint64, uint, int32:
		return fmt.Sprint(v), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := settingString(e)
			if err != nil {
				return "", err
			}
			if _, nested := e.([]any); nested {
				return "", errors.New("a list may hold only plain values")
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("must be a plain value or a list, not %T", v)
}

// flagNames is the set of fs's flag names.
func flagNames(fs *flag.FlagSet) map[string]bool {
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}
