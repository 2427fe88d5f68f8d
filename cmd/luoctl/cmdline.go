package main

import "strings"

// cmdlineParam is one "name" or "name=value" word of a kernel command line.
type cmdlineParam struct {
	Name     string
	Value    string
	HasValue bool
}

// String returns the parameter as it would be written on a command line.
func (p cmdlineParam) String() string {
	if !p.HasValue {
		return p.Name
	}
	return p.Name + "=" + p.Value
}

// parseCmdline splits a kernel command line the way the kernel's
// next_arg does: words are separated by white space outside double quotes,
// the first '=' splits name and value, and quotes around the value are
// dropped. A bare "--" ends the kernel's parameters; what follows is for
// init and is not returned.
func parseCmdline(s string) []cmdlineParam {
	var params []cmdlineParam
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	for s != "" {
		var word string
		inQuote, quoted := false, false
		if s[0] == '"' {
			s = s[1:]
			inQuote, quoted = true, true
		}
		i, equals := 0, -1
		for ; i < len(s); i++ {
			c := s[i]
			if isSpace(c) && !inQuote {
				break
			}
			if equals < 0 && c == '=' {
				equals = i
			}
			if c == '"' {
				inQuote = !inQuote
			}
		}
		word, s = s[:i], strings.TrimLeft(s[i:], " \t\n\r\v\f")
		p := cmdlineParam{Name: word}
		if equals >= 0 {
			p.Name, p.Value, p.HasValue = word[:equals], word[equals+1:], true
			if strings.HasPrefix(p.Value, `"`) {
				p.Value = strings.TrimSuffix(p.Value[1:], `"`)
			} else if quoted {
				p.Value = strings.TrimSuffix(p.Value, `"`)
			}
		} else if quoted {
			p.Name = strings.TrimSuffix(p.Name, `"`)
		}
		if !p.HasValue && p.Name == "--" {
			break
		}
		params = append(params, p)
	}
	return params
}

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// paramEq compares parameter names as the kernel's parameq does: '-' and
// '_' are the same.
func paramEq(a, b string) bool {
	norm := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	return norm(a) == norm(b)
}

// kstrtobool parses a boolean as the kernel's kstrtobool does, looking at
// the first one or two characters only: y, Y, t, T, e, E, 1 and "on" are
// true; n, N, f, F, d, D, 0 and "off" are false. ok is false for anything
// else, which the kernel rejects (and an early_param then leaves its
// setting as it was).
func kstrtobool(s string) (v, ok bool) {
	if s == "" {
		return false, false
	}
	switch s[0] {
	case 'y', 'Y', 't', 'T', 'e', 'E', '1':
		return true, true
	case 'n', 'N', 'f', 'F', 'd', 'D', '0':
		return false, true
	case 'o', 'O':
		if len(s) > 1 {
			switch s[1] {
			case 'n', 'N':
				return true, true
			case 'f', 'F':
				return false, true
			}
		}
	}
	return false, false
}

// boolParam is what the kernel makes of an early_param parsed with
// kstrtobool: the last valid setting wins, invalid ones are ignored.
type boolParam struct {
	Set     bool           // a valid setting was found
	Value   bool           // the setting, when Set
	Last    cmdlineParam   // the word that set it
	Invalid []cmdlineParam // words the kernel ignored
}

func lookupBool(params []cmdlineParam, name string) boolParam {
	var b boolParam
	for _, p := range params {
		if !paramEq(p.Name, name) {
			continue
		}
		// Without "=value" the handler gets NULL, which kstrtobool
		// rejects.
		v, ok := kstrtobool(p.Value)
		if !p.HasValue || !ok {
			b.Invalid = append(b.Invalid, p)
			continue
		}
		b.Set, b.Value, b.Last = true, v, p
	}
	return b
}
