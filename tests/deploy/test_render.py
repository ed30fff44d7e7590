#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""deploy/render.py renders its template subset as Helm does and refuses the rest.

Each case writes a one-template chart into a temporary directory.  The
supported constructs must give Helm's output; every construct outside the
subset (and every values.yaml feature outside the YAML subset) must raise
RenderError naming the problem, never render something.
"""
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "deploy"))
import render  # noqa: E402

CHART = "apiVersion: v2\nname: t\nversion: 0.1.0\nappVersion: \"1.2\"\n"
VALUES = """\
mode: sidecar
num: 3
yes_: true
no_: false
empty: ""
list: [a, "b c"]
maps:
  - name: x
    value: "1"
  - name: z
res:
  limits:
    memory: 9Gi
    cpu: "2"
  requests: {cpu: 500m}
"""


def rendered(tpl, values=VALUES, helpers=None, sets=()):
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "templates"))
        with open(os.path.join(d, "Chart.yaml"), "w") as f:
            f.write(CHART)
        with open(os.path.join(d, "values.yaml"), "w") as f:
            f.write(values)
        with open(os.path.join(d, "templates", "t.yaml"), "w") as f:
            f.write(tpl)
        if helpers is not None:
            with open(os.path.join(d, "templates", "_helpers.tpl"), "w") as f:
                f.write(helpers)
        out = render.render(sets, None, d)
    head = "---\n# Source: t/templates/t.yaml\n"
    assert out == "" or out.startswith(head), out
    return out[len(head):]


class Supported(unittest.TestCase):
    def test_values_and_quote(self):
        self.assertEqual(rendered('a: {{ .Values.num }}\nb: {{ .Values.num | quote }}\nc: {{ .Release.Name }}\n'
                                  'd: {{ .Chart.AppVersion }}\ne: {{ .Values.yes_ }}\n'),
                         'a: 3\nb: "3"\nc: stoker\nd: 1.2\ne: true\n')

    def test_trim(self):
        self.assertEqual(rendered("a:\n  {{- if .Values.yes_ }}\n  b: 1\n  {{- end }}\nc: 2\n"),
                         "a:\n  b: 1\nc: 2\n")
        self.assertEqual(rendered("x: {{- /* gone */ -}} 1\n"), "x:1\n")

    def test_if_else_if(self):
        tpl = ('{{- if eq .Values.mode "daemonset" }}d{{- else if eq .Values.mode "sidecar" }}s'
               '{{- else }}other{{- end }}\n')
        self.assertEqual(rendered(tpl), "s\n")
        self.assertEqual(rendered(tpl, sets=[("mode", "daemonset")]), "d\n")
        self.assertEqual(rendered(tpl, sets=[("mode", "x")]), "other\n")
        self.assertEqual(rendered("{{ if not .Values.empty }}e{{ end }}{{ if .Values.no_ }}f{{ end }}"
                                  "{{ if ne .Values.num 4 }}n{{ end }}\n"), "en\n")
        self.assertEqual(rendered("{{ if or .Values.empty .Values.num }}o{{ end }}{{ if and .Values.yes_ .Values.no_ }}a{{ end }}"
                                  "{{ or .Values.empty \"d\" }}{{ and .Values.num .Values.mode }}\n"), "odsidecar\n")

    def test_range_and_dollar(self):
        self.assertEqual(rendered("l:\n{{- range .Values.list }}\n  - {{ . | quote }} {{ $.Values.num }}\n{{- end }}\n"),
                         'l:\n  - "a" 3\n  - "b c" 3\n')
        self.assertEqual(rendered("{{- range .Values.maps }}{{ .name }};{{ end }}\n"), "x;z;\n")

    def test_toyaml_nindent(self):
        self.assertEqual(rendered("r:\n  {{- toYaml .Values.res | nindent 2 }}\nm:\n  {{- toYaml .Values.maps | nindent 2 }}\n"),
                         'r:\n  limits:\n    cpu: "2"\n    memory: 9Gi\n  requests:\n    cpu: 500m\n'
                         'm:\n  - name: x\n    value: "1"\n  - name: z\n')

    def test_include_default_fail(self):
        helpers = '{{- define "h" -}}\nk: {{ .Values.num }}\n{{- end }}'
        self.assertEqual(rendered('x:\n  {{- include "h" . | nindent 2 }}\ny: {{ default "d" .Values.empty }}\n',
                                  helpers=helpers), "x:\n  k: 3\ny: d\n")
        with self.assertRaisesRegex(render.RenderError, "fail: no"):
            rendered('{{ fail "no" }}')

    def test_empty_template_renders_nothing(self):
        self.assertEqual(rendered('{{- if .Values.no_ }}\na: 1\n{{- end }}\n'), "")

    def test_the_chart(self):
        out = render.targets()
        self.assertEqual(sorted(out), sorted(t[0] for t in render.TARGETS))
        for text in out.values():
            self.assertIn("\nkind: ", text)


class Refused(unittest.TestCase):
    def refused(self, tpl, msg, values=VALUES, helpers=None):
        with self.assertRaisesRegex(render.RenderError, msg):
            rendered(tpl, values, helpers)

    def test_functions_outside_the_subset(self):
        self.refused("{{ .Values.mode | upper }}", "'upper' is outside")
        self.refused("{{ tpl .Values.mode . }}", "'tpl' is outside")
        self.refused('{{ required "x" .Values.mode }}', "'required' is outside")
        self.refused('{{ template "h" . }}', "'template' is outside")
        self.refused("{{ printf \"%s\" .Values.mode }}", "'printf' is outside")

    def test_control_outside_the_subset(self):
        self.refused("{{ with .Values.res }}x{{ end }}", "'with' is outside")
        self.refused("{{ range .Values.list }}x{{ else }}y{{ end }}", "else without if")
        self.refused("{{ if (eq .Values.num 3) }}x{{ end }}", "parentheses")
        self.refused("{{ $x := .Values.num }}", "variables other than")
        self.refused("{{ range $i, $v := .Values.list }}x{{ end }}", "variables other than")
        self.refused("{{ if .Values.yes_ }}x", "if opened at .* has no end")
        self.refused("x{{ end }}", "end without a block")
        self.refused("{{ range .Values.res }}x{{ end }}", "range over a list only")
        self.refused("{{ .Values.mode }", "unbalanced")
        self.refused("{{ if eq .Values.num \"3\" }}x{{ end }}", "compares two")
        self.refused("{{ .Values.mode | quote | nindent }}", "nindent takes 2")

    def test_missing_keys_and_printing(self):
        self.refused("{{ .Values.nope }}", "no key .Values.nope")
        self.refused("{{ .Values.res.limits.gpu }}", "no key .Values.res.limits.gpu")
        self.refused("{{ .Values.res }}", "cannot print dict directly")
        self.refused("{{ .Values.list }}", "cannot print list directly")
        self.refused("{{ .Values.big }}", "Helm would print it as a float", values=VALUES + "big: 1000000\n")

    def test_values_outside_the_yaml_subset(self):
        for values, msg in [
            ("a: &x 1\nb: *x\n", "outside render.py's subset"),
            ("a: |\n  text\n", "outside render.py's subset"),
            ("a: yes\n", "ambiguous YAML 1.1 boolean"),
            ("on: 1\n", "YAML 1.1 boolean as a key"),
            ("a: 1.5\n", "floats are outside"),
            ("a: {b: {c: 1}}\n", "nested flow"),
            ("a: [1,\n  2]\n", "flow sequence must end on its line"),
            ("a: 1\na: 2\n", "duplicate key"),
            ("a:\n  b: 1\n   c: 2\n", "bad indentation"),
            ("---\na: 1\n", "document markers"),
        ]:
            with self.subTest(values=values):
                self.refused("x\n", msg, values=values)


if __name__ == "__main__":
    unittest.main(verbosity=2)
