#!/usr/bin/env python3
"""Regenerates the Go-checked part of crates/cli/tests/template.rs.

Runs every case through harness.go (Go's text/template with Docker 20.10's
template functions and formatter) and writes the expected strings Go
printed between the BEGIN/END GENERATED markers, then `cargo fmt`.
Needs Go (Debian: golang-go):  python3 crates/cli/tests/template_oracle/gen.py
"""
import json, os, re, subprocess, sys
HERE = os.path.dirname(os.path.abspath(__file__))
TEST_FILE = os.path.join(HERE, "..", "template.rs")
IMAGE = {"Id":"sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb",
 "RepoTags":["registry.demo.test/demo/base:v1","base:latest"],"RepoDigests":[],"Size":82,
 "Config":{"Env":["PATH=/usr/bin","A=1"],"Cmd":["sh","-c","echo hi"],"Entrypoint":None,
   "Labels":{"org.b":"2","org.a":"1"},"ExposedPorts":{"80/tcp":{}},"User":""},
 "RootFS":{"Type":"layers","Layers":["sha256:aaa","sha256:bbb"]},"Os":"linux","Architecture":"amd64",
 "Text":"a<b>&\"\\\n\t\u0001\u2028é"}
ROWS = [
 {"Repository":"registry.demo.test/demo/base","Tag":"v1","ID":"ccb28a06ca54","CreatedSince":"3 years ago","Size":"82B","Digest":"<none>"},
 {"Repository":"<none>","Tag":"<none>","ID":"0123456789ab","CreatedSince":"","Size":"1.5kB","Digest":"<none>"},
]
HISTORY_ROWS = [{"ID":"ccb28a06ca54","CreatedSince":"3 years ago","CreatedBy":"/bin/sh -c #(nop) ADD file:abc in /","Size":"82B","Comment":""},{"ID":"<missing>","CreatedSince":"3 years ago","CreatedBy":"/bin/sh -c #(nop)  CMD [\"sh\"]","Size":"0B","Comment":"imported"}]
DF_ROWS = [{"Type":"Images","TotalCount":"5","Active":"0","Size":"424B","Reclaimable":"424B (100%)"},{"Type":"Containers","TotalCount":"0","Active":"0","Size":"0B","Reclaimable":"0B"},{"Type":"Local Volumes","TotalCount":"0","Active":"0","Size":"0B","Reclaimable":"0B"},{"Type":"Build Cache","TotalCount":"0","Active":"0","Size":"0B","Reclaimable":"0B"}]
IMAGES_HEADERS = {"ID":"IMAGE ID","Repository":"REPOSITORY","Tag":"TAG","Digest":"DIGEST","CreatedSince":"CREATED","CreatedAt":"CREATED AT","Size":"SIZE","Containers":"CONTAINERS","VirtualSize":"SIZE","SharedSize":"SHARED SIZE","UniqueSize":"UNIQUE SIZE"}
groups = {
 "fields_print_as_go_prints_them": ["{{.Id}}","{{.Config.Env}}","{{.Config.Labels}}","{{.Config.Entrypoint}}","{{.Missing}}","{{.Missing.Deeper}}","{{.Config.ExposedPorts}}","{{.RepoDigests}}","{{.Size}}","{{.RootFS}}","{{.Os}}/{{.Architecture}}","{{$.Os}}","{{with .Config}}{{.User}}|{{$.Os}}|{{.Cmd}}{{end}}","{{with .Missing}}x{{else}}none{{end}}"],
 "json_is_compact_go_json": ["{{json .Config.Env}}","{{json .Config}}","{{json .Missing}}","{{json .Config.Labels}}","{{json .Text}}","{{json .Size}}","{{json .RepoDigests}}","{{json .Config.Entrypoint}}"],
 "range_over_lists_and_maps": ["{{range .Config.Env}}{{.}};{{end}}","{{range $i, $e := .RepoTags}}{{$i}}={{$e}} {{end}}","{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}","{{range .RepoDigests}}x{{else}}none{{end}}","{{range .Config.Entrypoint}}x{{else}}nil{{end}}","{{range .Missing}}x{{else}}missing{{end}}","{{range .Config.Labels}}{{.}}{{end}}","{{range $e := .RepoTags}}{{$e}} {{end}}"],
 "index_lists_and_maps": ["{{index .RepoTags 0}}","{{index .Config.Labels \"org.a\"}}","{{index .Config.Labels \"nope\"}}|","{{(index .RootFS.Layers 1)}}","{{index . \"Config\" \"Env\" 1}}"],
 "join_and_split": ["{{join .Config.Env \",\"}}","{{join .Config.Cmd \" \"}}","{{split .Id \":\"}}","{{index (split .Id \":\") 1}}","{{join (split \"a,b,c\" \",\") \"|\"}}","{{len (split \"\" \",\")}}"],
 "string_functions": ["{{lower \"ABC Déf\"}}","{{upper .Os}}","{{title \"hello wORLD foo_bar x-y\"}}","{{pad .Os 2 3}}|","{{pad \"\" 2 3}}|","{{truncate .Id 12}}","{{truncate \"ab\" 5}}"],
 "printf_formats_as_go": ["{{printf \"%s:%d\" .Os .Size}}","{{printf \"%-10s|\" .Os}}","{{printf \"%10s|\" .Os}}","{{printf \"%05d\" .Size}}","{{printf \"%q\" .Text}}","{{printf \"%v\" .Config.Env}}","{{printf \"%s\" .Config.Env}}","{{printf \"%d\" .Os}}","{{printf \"%s %s\" .Os}}","{{printf \"%s\" .Os .Size}}","{{printf \"%x\" .Os}}","{{printf \"%X\" 255}}","{{printf \"%.3s\" .Architecture}}","{{printf \"%t\" true}}","{{printf \"%5.1f|\" 3.14159}}","{{printf \"%v\" .Missing}}","{{printf \"%d%%\" 50}}","{{printf \"%+d\" 5}}","{{printf \"%v\" .Config.Labels}}","{{printf \"%s\" .Size}}","{{printf \"%e\" 1234.5}}","{{printf \"%g\" 0.000012}}"],
 "print_and_println": ["{{print \"a\" 1 2 \"b\" .Size .Config.Env}}","{{println .Os .Size}}","{{print}}|","{{print .Missing}}"],
 "pipelines_pass_the_last_argument": ["{{.Os | upper}}","{{.Config.Env | join \",\"}}","{{.Id | printf \"%.19s\"}}","{{\"x\" | printf \"%s-%s\" \"a\"}}","{{.Os | printf \"%s\" | len}}"],
 "conditions_and_comparisons": ["{{if .Config.Labels}}labels{{else}}none{{end}}","{{if .RepoDigests}}d{{else if .RepoTags}}t{{else}}n{{end}}","{{if eq .Os \"linux\"}}L{{end}}","{{if ne .Size 82}}a{{else}}b{{end}}","{{if gt .Size 50}}big{{end}}","{{if lt .Os \"m\"}}lt{{end}}","{{if and .Os .Size}}both{{end}}","{{or .Missing \"default\"}}","{{and .Os .Architecture}}","{{not .RepoDigests}}","{{len .RepoTags}}","{{len .Config.Labels}}","{{len .Os}}","{{eq .Size 81 82}}","{{le 2 2}} {{ge 1 2}} {{lt 1.5 2.5}}","{{and .RepoDigests .Os}}|","{{or .RepoDigests .Config.User}}|"],
 "variables": ["{{$x := .Os}}{{$x}}-{{$x}}","{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}","{{with $c := .Config}}{{$c.User}}|{{len $c.Env}}{{end}}","{{range $i, $e := .RepoTags}}{{if $i}},{{end}}{{$e}}{{end}}"],
 "trim_markers_and_comments": ["a  {{- .Os -}}  b","a {{/* comment */}} b","a {{- /* c */ -}} b","{{- .Os}}\n","{{.Os}}\n  {{- .Size}}","x{{-3}}"],
 "literals": ["{{\"a\\tb\\u00e9\"}}","{{`raw\\t`}}","{{3}}","{{-3}}","{{1.5}}","{{true}}","{{0x1F}}","{{'a'}}","{{1e6}}","{{1234567.0}}","{{123456.0}}","{{0.0001}}","{{0.00001}}"],
 "errors_name_the_node": ["{{.Os.Foo}}","{{.Config.Entrypoint.Foo}}","{{foo .}}","{{.Os","{{if .Os}}x","{{end}}","{{index .RepoTags 5}}","{{lower .Size}}","{{range .Os}}{{end}}","{{.Os 1}}","{{$y}}","{{eq .Os 1}}","{{lt true false}}","{{index .Os 1}}","{{len .Size}}","{{else}}","{{printf}}","{{not}}","{{(.Os}}","{{\"unterminated}}","{{. | .Os}}","{{}}","{{eq .Config.Env .Config.Env}}"],
}
tables = {
 "docker_images_default_table": ("table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}", ROWS),
 "table_of_one_column": ("table {{.ID}}", ROWS),
 "table_headers_keep_titles_through_functions": ("table {{.Repository}}:{{.Tag}}\\t{{.Size | lower}}\\t{{json .ID}}\\t{{upper .Digest}}", ROWS),
 "plain_format_prints_one_line_per_row": ("{{.Repository}}:{{.Tag}}", ROWS),
 "table_without_rows_prints_its_header": ("table {{.ID}}\\t{{.Size}}", []),
 "leading_space_is_not_a_table": ("  table {{.ID}}", ROWS),
 "json_rows": ("{{json .}}", ROWS),
 "table_with_empty_last_cell": ("table {{.ID}}\\t{{.Tag}}\\t", ROWS),
 "table_with_pad": ("table {{pad .Tag 1 1}}|\\t{{.ID}}", ROWS),
 "table_rows_of_several_lines": ("table {{.ID}}\\t{{.Tag}}\\n{{.Repository}}\\t{{.Size}}", ROWS),
 "tab_and_newline_escapes_in_plain_formats": ("{{.ID}}\\t{{.Tag}}\\n", ROWS),
 "history_table_headers": ("table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}", HISTORY_ROWS, "HISTORY_HEADERS"),
 "df_table_headers": ("table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}", DF_ROWS, "DF_HEADERS"),
}
HEADERS = {"IMAGES_HEADERS": IMAGES_HEADERS, "HISTORY_HEADERS": {"ID":"IMAGE","CreatedSince":"CREATED","CreatedAt":"CREATED AT","CreatedBy":"CREATED BY","Size":"SIZE","Comment":"COMMENT"}, "DF_HEADERS": {"Type":"TYPE","TotalCount":"TOTAL","Active":"ACTIVE","Size":"SIZE","Reclaimable":"RECLAIMABLE"}}
OVERRIDES = {"{{.Config.ExposedPorts}}": ("map[80/tcp:{}]", "Docker's typed\n    // map[string]struct{} prints `{}` (checked with a real docker)."),"{{index .Config.Labels \"nope\"}}|": ("|", "Docker formats its typed\n    // map[string]string labels, whose missing key is the zero value \"\".")}
cases=[]
for g, ts in groups.items():
    for i,t in enumerate(ts):
        cases.append({"name":f"{g}#{i}","tmpl":t,"data":IMAGE})
INSPECT = ["{{.Missing}}", "{{.Config.Nope}}", "{{.Missing.Deeper}}", "{{.Os}} {{.Config.Env}}", "{{with .Config}}{{.Nope}}{{end}}", "{{index .Config.Labels \"org.a\"}}"]
for i,t in enumerate(INSPECT):
    cases.append({"name":f"inspect#{i}","tmpl":t,"data":IMAGE,"inspect":True})
for g,(t,rows,*h) in tables.items():
    cases.append({"name":g,"tmpl":t,"rows":rows,"headers":HEADERS[h[0] if h else "IMAGES_HEADERS"]})
res = json.loads(subprocess.run(["go","run","harness.go"],input=json.dumps(cases),capture_output=True,text=True,cwd=HERE,check=True).stdout)
def rs(s):
    if '"#' not in s and "\\" not in s and "\n" not in s and "\t" not in s and all(ord(c)>=0x20 and c not in "\u2028" for c in s) and '"' in s:
        return 'r#"'+s+'"#'
    out='"'
    for c in s:
        if c=='"': out+='\\"'
        elif c=='\\': out+='\\\\'
        elif c=='\n': out+='\\n'
        elif c=='\t': out+='\\t'
        elif ord(c)<0x20 or c in "\u2028\u2029": out+='\\u{%x}'%ord(c)
        else: out+=c
    return out+'"'
byname={r["name"]:r for r in res}
out=[]
for g, ts in groups.items():
    out.append(f"#[test]\nfn {g}() {{\n    let image = image();")
    for i,t in enumerate(ts):
        r=byname[f"{g}#{i}"]
        if t in OVERRIDES:
            expected, why = OVERRIDES[t]
            out.append(f"    // Go on decoded JSON prints {rs(r['out'])}; {why}")
            out.append(f"    check({rs(t)}, &image, {rs(expected)});")
            continue
        if r["err"]:
            out.append(f"    check_err({rs(t)}, &image, {rs(r['err'])});")
        else:
            out.append(f"    check({rs(t)}, &image, {rs(r['out'])});")
    out.append("}\n")
out.append("#[test]\nfn inspect_refuses_missing_fields() {\n    let image = image();")
for i,t in enumerate(INSPECT):
    r=byname[f"inspect#{i}"]
    if r["err"]:
        out.append(f"    check_inspect_err({rs(t)}, &image, {rs(r['err'])});")
    else:
        out.append(f"    check_inspect({rs(t)}, &image, {rs(r['out'])});")
out.append("}\n")
for g,(t,rows,*h) in tables.items():
    r=byname[g]
    assert not r["err"], r
    hc = h[0] if h else "IMAGES_HEADERS"
    rowsrc = "rows()" if rows is ROWS else ("Vec::new()" if not rows else "vec![" + ", ".join("json!(" + json.dumps(x) + ")" for x in rows) + "]")
    out.append(f"#[test]\nfn {g}() {{\n    let rows: Vec<Value> = {rowsrc};\n    check_rows({rs(t)}, &rows, {hc}, {rs(r['out'])});\n}}\n")
text = open(TEST_FILE).read()
begin = text.index("// BEGIN GENERATED")
begin = text.index("\n", begin) + 1
end = text.index("// END GENERATED")
text = text[:begin] + "\n" + "\n".join(out) + "\n" + text[end:]
# The test image constant follows the cases' IMAGE.
text = re.sub(r'const IMAGE: &str = r##".*?"##;', lambda _: 'const IMAGE: &str = r##"%s"##;' % json.dumps(IMAGE, ensure_ascii=True), text, flags=re.S)
open(TEST_FILE, "w").write(text)
subprocess.run(["cargo", "fmt", "--all"], cwd=HERE, check=True)
