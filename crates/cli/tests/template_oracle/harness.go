package main

// Docker 20.10's template functions and formatter, run on JSON data, to
// produce the expected strings of imgstore's template tests.
import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
)

var basicFunctions = template.FuncMap{
	"json": func(v interface{}) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split":    strings.Split,
	"join":     joinElements,
	"title":    strings.Title,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      func(s string, p, q int) string { if s == "" { return s }; return strings.Repeat(" ", p) + s + strings.Repeat(" ", q) },
	"truncate": func(s string, n int) string { if len(s) < n { return s }; return s[:n] },
}

var headerFunctions = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v string, _ string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

func joinElements(elems interface{}, sep string) (string, error) {
	if elems == nil {
		return "", nil
	}
	switch v := elems.(type) {
	case []interface{}:
		var b strings.Builder
		for i, e := range v {
			if i > 0 {
				b.WriteString(sep)
			}
			fmt.Fprint(&b, e)
		}
		return b.String(), nil
	case []string:
		return strings.Join(v, sep), nil
	}
	return "", fmt.Errorf("expected slice, got %T", elems)
}

// ints stay ints (Docker's typed int64 fields), other numbers float64.
func convert(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []interface{}:
		for i := range x {
			x[i] = convert(x[i])
		}
		return x
	case map[string]interface{}:
		for k := range x {
			x[k] = convert(x[k])
		}
		return x
	}
	return v
}

type Case struct {
	Name    string            `json:"name"`
	Tmpl    string            `json:"tmpl"`
	Data    json.RawMessage   `json:"data"`
	Rows    []json.RawMessage `json:"rows"`
	Headers map[string]string `json:"headers"`
	Inspect bool              `json:"inspect"`
}

func decode(raw json.RawMessage) interface{} {
	var v interface{}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		panic(err)
	}
	return convert(v)
}

func main() {
	var cases []Case
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	results := []map[string]string{}
	for _, c := range cases {
		out, errText := "", ""
		if c.Rows == nil {
			t, err := template.New("").Funcs(basicFunctions).Parse(c.Tmpl)
			if err != nil {
				errText = err.Error()
			} else {
				buf := &bytes.Buffer{}
				if c.Inspect {
					t = t.Option("missingkey=error")
				}
				if err := t.Execute(buf, decode(c.Data)); err != nil {
					errText = err.Error()
				}
				out = buf.String()
			}
		} else {
			// Docker's formatter.Context.Write.
			format := c.Tmpl
			table := strings.HasPrefix(format, "table")
			if table {
				format = format[len("table"):]
			}
			format = strings.Trim(format, " ")
			format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
			t, err := template.New("").Funcs(basicFunctions).Parse(format)
			if err != nil {
				errText = err.Error()
			} else {
				body := &bytes.Buffer{}
				for _, r := range c.Rows {
					if err := t.Execute(body, decode(r)); err != nil {
						errText = err.Error()
						break
					}
					body.WriteString("\n")
				}
				if errText == "" {
					res := &bytes.Buffer{}
					if table {
						tw := tabwriter.NewWriter(res, 10, 1, 3, ' ', 0)
						hb := &bytes.Buffer{}
						t.Funcs(headerFunctions).Execute(hb, c.Headers)
						hb.WriteTo(tw)
						tw.Write([]byte("\n"))
						body.WriteTo(tw)
						tw.Flush()
					} else {
						body.WriteTo(res)
					}
					out = res.String()
				}
			}
		}
		results = append(results, map[string]string{"name": c.Name, "out": out, "err": errText})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	enc.Encode(results)
}
