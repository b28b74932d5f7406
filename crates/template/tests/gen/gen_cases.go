package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type Case struct {
	Name       string      `json:"name"`
	Tmpl       string      `json:"tmpl"`
	Data       json.RawMessage `json:"data,omitempty"`
	MissingKey string      `json:"missingkey,omitempty"`
	Want       *string     `json:"want,omitempty"`
	Err        *string     `json:"err,omitempty"`
}

func conv(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && !strings.ContainsAny(x.String(), ".eE") {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]interface{}:
		for k, e := range x {
			x[k] = conv(e)
		}
		return x
	case []interface{}:
		for i, e := range x {
			x[i] = conv(e)
		}
		return x
	}
	return v
}

func main() {
	dec := json.NewDecoder(os.Stdin)
	dec.UseNumber()
	var cases []Case
	if err := dec.Decode(&cases); err != nil {
		panic(err)
	}
	for i := range cases {
		c := &cases[i]
		c.Want, c.Err = nil, nil
		t := template.New("t")
		if c.MissingKey != "" {
			t = t.Option("missingkey=" + c.MissingKey)
		}
		t, err := t.Parse(c.Tmpl)
		if err != nil {
			s := err.Error()
			c.Err = &s
			continue
		}
		var data interface{}
		d := json.NewDecoder(bytes.NewReader(c.Data))
		d.UseNumber()
		if err := d.Decode(&data); err != nil {
			panic(err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, conv(data)); err != nil {
			s := err.Error()
			c.Err = &s
			continue
		}
		s := buf.String()
		c.Want = &s
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	enc.Encode(cases)
}
