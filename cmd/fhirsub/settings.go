package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// settingSet is the typed flags of a command, each bound to an environment
// variable: a value comes from the command line, else from the variable,
// else from the default. It wraps the standard flag package, so
// `--insecure` is a switch, `--retry-max 2m` a duration and
// `--delivery-workers 8` an int, and every bad value is reported as
//
//	--delivery-workers (FHIRSUB_DELIVERY_WORKERS): "x" is not a number
//
// whichever of the two it came from.
type settingSet struct {
	fs   *flag.FlagSet
	list []*setting
	err  error // the first bad value met by a flag, in its own words
}

// setting is one flag with its environment variable.
type setting struct {
	name, env, usage string
	kind             string // shown in --help: string, int, duration, bool, list
	def              string // shown in --help; "" shows no default
	set              func(string) error
	owner            *settingSet
}

func newSettingSet(name string) *settingSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, usage is printed by the caller
	fs.Usage = func() {}
	return &settingSet{fs: fs}
}

// settingError is the one shape of a bad setting's error.
func settingError(name, env, value, problem string) error {
	return fmt.Errorf("--%s (%s): %q %s", name, env, value, problem)
}

func (s *settingSet) add(name, env, kind, def, usage string, set func(string) error) {
	st := &setting{name: name, env: env, usage: usage, kind: kind, def: def, set: set, owner: s}
	s.list = append(s.list, st)
	s.fs.Var(st, name, usage)
}

// String registers a string setting.
func (s *settingSet) String(dst *string, name, env, def, usage string) {
	*dst = def
	s.add(name, env, "string", def, usage, func(v string) error { *dst = v; return nil })
}

// Int registers an int setting whose value must be at least minimum.
func (s *settingSet) Int(dst *int, name, env string, def, minimum int, usage string) {
	*dst = def
	s.add(name, env, "int", strconv.Itoa(def), usage, func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return errors.New("is not a number")
		}
		if n < minimum {
			return fmt.Errorf("is less than %d", minimum)
		}
		*dst = n
		return nil
	})
}

// Int64 registers an int64 setting whose value must be at least minimum.
func (s *settingSet) Int64(dst *int64, name, env string, def, minimum int64, usage string) {
	*dst = def
	s.add(name, env, "int", strconv.FormatInt(def, 10), usage, func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return errors.New("is not a number")
		}
		if n < minimum {
			return fmt.Errorf("is less than %d", minimum)
		}
		*dst = n
		return nil
	})
}

// Duration registers a duration setting ("90s", "5m", "1h30m") whose value
// must be at least minimum (0: not negative; 1: positive).
func (s *settingSet) Duration(dst *time.Duration, name, env string, def, minimum time.Duration, usage string) {
	*dst = def
	s.add(name, env, "duration", def.String(), usage, func(v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return errors.New("is not a duration (e.g. 30s, 5m, 1h)")
		}
		switch {
		case d >= minimum:
		case minimum == 0:
			return errors.New("must not be negative")
		case minimum == 1:
			return errors.New("must be positive")
		default:
			return fmt.Errorf("is shorter than %v", minimum)
		}
		*dst = d
		return nil
	})
}

// Bool registers a switch: `--insecure` alone means true; the environment
// variable takes true/false, 1/0.
func (s *settingSet) Bool(dst *bool, name, env string, def bool, usage string) {
	*dst = def
	s.add(name, env, "bool", "", usage, func(v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return errors.New("is not true or false")
		}
		*dst = b
		return nil
	})
}

// List registers a comma-separated list; blank items are dropped.
func (s *settingSet) List(dst *[]string, name, env, usage string) {
	s.add(name, env, "list", "", usage, func(v string) error {
		*dst = nil
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				*dst = append(*dst, item)
			}
		}
		return nil
	})
}

// String implements flag.Value; the value lives in the destination.
func (st *setting) String() string { return "" }

// Set implements flag.Value: it parses a command-line value and keeps the
// first error in the set's own words.
func (st *setting) Set(v string) error {
	if err := st.set(v); err != nil {
		err = settingError(st.name, st.env, v, err.Error())
		if st.owner.err == nil {
			st.owner.err = err
		}
		return err
	}
	return nil
}

// IsBoolFlag lets a bool setting be used as a switch.
func (st *setting) IsBoolFlag() bool { return st.kind == "bool" }

// parse reads the command line, then the environment variables of the
// settings the command line did not set, in registration order. Errors come
// in that order too: the first bad flag on the command line, else the
// first bad environment variable.
func (s *settingSet) parse(args []string, getenv func(string) string) error {
	if err := s.fs.Parse(args); err != nil {
		if s.err != nil {
			return s.err
		}
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w (see fhirsub --help)", err)
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see fhirsub --help)", s.fs.Arg(0))
	}
	seen := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	for _, st := range s.list {
		if seen[st.name] || st.env == "" {
			continue
		}
		if v := getenv(st.env); v != "" {
			if err := st.set(v); err != nil {
				return settingError(st.name, st.env, v, err.Error())
			}
		}
	}
	return nil
}

// printDefaults writes one entry per setting: flag, type, help, variable
// and default.
func (s *settingSet) printDefaults(w io.Writer) {
	for _, st := range s.list {
		head := "  --" + st.name
		if st.kind != "bool" {
			head += " " + st.kind
		}
		tail := "env " + st.env
		if st.def != "" {
			tail += ", default " + st.def
		}
		fmt.Fprintf(w, "%s\n        %s (%s)\n", head, st.usage, tail)
	}
}
