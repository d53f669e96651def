//! Docker's `--format` templates (`crates/cli/src/template.rs`), each
//! construct checked against the exact output of Go's `text/template`
//! (Go 1.19) with Docker 20.10's functions and formatter
//! (`templates.basicFunctions`, `formatter.Context.Write`) on the same
//! JSON value: every expected string of the generated tests is what Go
//! printed (two exceptions, commented); the tests at the end are imgstore's own.

#[path = "../src/template.rs"]
mod template;

use serde_json::{Value, json};
use template::{
    DF_HEADERS, HISTORY_HEADERS, IMAGES_HEADERS, TemplateError, is_table, render, render_inspect,
    render_rows, tabwriter,
};

const IMAGE: &str = r##"{"Id": "sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb", "RepoTags": ["registry.demo.test/demo/base:v1", "base:latest"], "RepoDigests": [], "Size": 82, "Config": {"Env": ["PATH=/usr/bin", "A=1"], "Cmd": ["sh", "-c", "echo hi"], "Entrypoint": null, "Labels": {"org.b": "2", "org.a": "1"}, "ExposedPorts": {"80/tcp": {}}, "User": ""}, "RootFS": {"Type": "layers", "Layers": ["sha256:aaa", "sha256:bbb"]}, "Os": "linux", "Architecture": "amd64", "Text": "a<b>&\"\\\n\t\u0001\u2028\u00e9"}"##;

/// An inspect-like object: lists, maps, null, an empty list, odd text.
fn image() -> Value {
    serde_json::from_str(IMAGE).expect("the test image is JSON")
}

/// Two `images` rows, one dangling with no CREATED value.
fn rows() -> Vec<Value> {
    vec![
        json!({"Repository": "registry.demo.test/demo/base", "Tag": "v1", "ID": "ccb28a06ca54", "CreatedSince": "3 years ago", "Size": "82B", "Digest": "<none>"}),
        json!({"Repository": "<none>", "Tag": "<none>", "ID": "0123456789ab", "CreatedSince": "", "Size": "1.5kB", "Digest": "<none>"}),
    ]
}

fn check(template: &str, value: &Value, expected: &str) {
    match render(template, value) {
        Ok(out) => assert_eq!(out, expected, "{template}"),
        Err(e) => panic!("{template}: {e}"),
    }
}

fn check_err(template: &str, value: &Value, expected: &str) {
    match render(template, value) {
        Ok(out) => panic!("{template}: printed {out:?}, expected the error {expected}"),
        Err(e) => assert_eq!(e.to_string(), expected, "{template}"),
    }
}

fn check_inspect(template: &str, value: &Value, expected: &str) {
    match render_inspect(template, value) {
        Ok(out) => assert_eq!(out, expected, "{template}"),
        Err(e) => panic!("{template}: {e}"),
    }
}

fn check_inspect_err(template: &str, value: &Value, expected: &str) {
    match render_inspect(template, value) {
        Ok(out) => panic!("{template}: printed {out:?}, expected the error {expected}"),
        Err(e) => assert_eq!(e.to_string(), expected, "{template}"),
    }
}

fn check_rows(format: &str, rows: &[Value], headers: &[(&str, &str)], expected: &str) {
    match render_rows(format, rows, headers) {
        Ok(out) => assert_eq!(out, expected, "{format}"),
        Err(e) => panic!("{format}: {e}"),
    }
}

#[test]
fn fields_print_as_go_prints_them() {
    let image = image();
    check(
        "{{.Id}}",
        &image,
        "sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb",
    );
    check("{{.Config.Env}}", &image, "[PATH=/usr/bin A=1]");
    check("{{.Config.Labels}}", &image, "map[org.a:1 org.b:2]");
    check("{{.Config.Entrypoint}}", &image, "<no value>");
    check("{{.Missing}}", &image, "<no value>");
    check("{{.Missing.Deeper}}", &image, "<no value>");
    // Go on decoded JSON prints "map[80/tcp:map[]]"; Docker's typed
    // map[string]struct{} prints `{}` (checked with a real docker).
    check("{{.Config.ExposedPorts}}", &image, "map[80/tcp:{}]");
    check("{{.RepoDigests}}", &image, "[]");
    check("{{.Size}}", &image, "82");
    check(
        "{{.RootFS}}",
        &image,
        "map[Layers:[sha256:aaa sha256:bbb] Type:layers]",
    );
    check("{{.Os}}/{{.Architecture}}", &image, "linux/amd64");
    check("{{$.Os}}", &image, "linux");
    check(
        "{{with .Config}}{{.User}}|{{$.Os}}|{{.Cmd}}{{end}}",
        &image,
        "|linux|[sh -c echo hi]",
    );
    check("{{with .Missing}}x{{else}}none{{end}}", &image, "none");
}

#[test]
fn json_is_compact_go_json() {
    let image = image();
    check("{{json .Config.Env}}", &image, r#"["PATH=/usr/bin","A=1"]"#);
    check(
        "{{json .Config}}",
        &image,
        r#"{"Cmd":["sh","-c","echo hi"],"Entrypoint":null,"Env":["PATH=/usr/bin","A=1"],"ExposedPorts":{"80/tcp":{}},"Labels":{"org.a":"1","org.b":"2"},"User":""}"#,
    );
    check("{{json .Missing}}", &image, "null");
    check(
        "{{json .Config.Labels}}",
        &image,
        r#"{"org.a":"1","org.b":"2"}"#,
    );
    check(
        "{{json .Text}}",
        &image,
        "\"a<b>&\\\"\\\\\\n\\t\\u0001\\u2028é\"",
    );
    check("{{json .Size}}", &image, "82");
    check("{{json .RepoDigests}}", &image, "[]");
    check("{{json .Config.Entrypoint}}", &image, "null");
}

#[test]
fn range_over_lists_and_maps() {
    let image = image();
    check(
        "{{range .Config.Env}}{{.}};{{end}}",
        &image,
        "PATH=/usr/bin;A=1;",
    );
    check(
        "{{range $i, $e := .RepoTags}}{{$i}}={{$e}} {{end}}",
        &image,
        "0=registry.demo.test/demo/base:v1 1=base:latest ",
    );
    check(
        "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}",
        &image,
        "org.a=1,org.b=2,",
    );
    check("{{range .RepoDigests}}x{{else}}none{{end}}", &image, "none");
    check(
        "{{range .Config.Entrypoint}}x{{else}}nil{{end}}",
        &image,
        "nil",
    );
    check(
        "{{range .Missing}}x{{else}}missing{{end}}",
        &image,
        "missing",
    );
    check("{{range .Config.Labels}}{{.}}{{end}}", &image, "12");
    check(
        "{{range $e := .RepoTags}}{{$e}} {{end}}",
        &image,
        "registry.demo.test/demo/base:v1 base:latest ",
    );
}

#[test]
fn index_lists_and_maps() {
    let image = image();
    check(
        "{{index .RepoTags 0}}",
        &image,
        "registry.demo.test/demo/base:v1",
    );
    check(r#"{{index .Config.Labels "org.a"}}"#, &image, "1");
    // Go on decoded JSON prints "<no value>|"; Docker formats its typed
    // map[string]string labels, whose missing key is the zero value "".
    check(r#"{{index .Config.Labels "nope"}}|"#, &image, "|");
    check("{{(index .RootFS.Layers 1)}}", &image, "sha256:bbb");
    check(r#"{{index . "Config" "Env" 1}}"#, &image, "A=1");
}

#[test]
fn join_and_split() {
    let image = image();
    check(r#"{{join .Config.Env ","}}"#, &image, "PATH=/usr/bin,A=1");
    check(r#"{{join .Config.Cmd " "}}"#, &image, "sh -c echo hi");
    check(
        r#"{{split .Id ":"}}"#,
        &image,
        "[sha256 ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb]",
    );
    check(
        r#"{{index (split .Id ":") 1}}"#,
        &image,
        "ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb",
    );
    check(r#"{{join (split "a,b,c" ",") "|"}}"#, &image, "a|b|c");
    check(r#"{{len (split "" ",")}}"#, &image, "1");
}

#[test]
fn string_functions() {
    let image = image();
    check(r#"{{lower "ABC Déf"}}"#, &image, "abc déf");
    check("{{upper .Os}}", &image, "LINUX");
    check(
        r#"{{title "hello wORLD foo_bar x-y"}}"#,
        &image,
        "Hello WORLD Foo_bar X-Y",
    );
    check("{{pad .Os 2 3}}|", &image, "  linux   |");
    check(r#"{{pad "" 2 3}}|"#, &image, "|");
    check("{{truncate .Id 12}}", &image, "sha256:ccb28");
    check(r#"{{truncate "ab" 5}}"#, &image, "ab");
}

#[test]
fn printf_formats_as_go() {
    let image = image();
    check(r#"{{printf "%s:%d" .Os .Size}}"#, &image, "linux:82");
    check(r#"{{printf "%-10s|" .Os}}"#, &image, "linux     |");
    check(r#"{{printf "%10s|" .Os}}"#, &image, "     linux|");
    check(r#"{{printf "%05d" .Size}}"#, &image, "00082");
    check(
        r#"{{printf "%q" .Text}}"#,
        &image,
        "\"a<b>&\\\"\\\\\\n\\t\\x01\\u2028é\"",
    );
    check(
        r#"{{printf "%v" .Config.Env}}"#,
        &image,
        "[PATH=/usr/bin A=1]",
    );
    check(
        r#"{{printf "%s" .Config.Env}}"#,
        &image,
        "[PATH=/usr/bin A=1]",
    );
    check(r#"{{printf "%d" .Os}}"#, &image, "%!d(string=linux)");
    check(r#"{{printf "%s %s" .Os}}"#, &image, "linux %!s(MISSING)");
    check(
        r#"{{printf "%s" .Os .Size}}"#,
        &image,
        "linux%!(EXTRA int64=82)",
    );
    check(r#"{{printf "%x" .Os}}"#, &image, "6c696e7578");
    check(r#"{{printf "%X" 255}}"#, &image, "FF");
    check(r#"{{printf "%.3s" .Architecture}}"#, &image, "amd");
    check(r#"{{printf "%t" true}}"#, &image, "true");
    check(r#"{{printf "%5.1f|" 3.14159}}"#, &image, "  3.1|");
    check(r#"{{printf "%v" .Missing}}"#, &image, "<nil>");
    check(r#"{{printf "%d%%" 50}}"#, &image, "50%");
    check(r#"{{printf "%+d" 5}}"#, &image, "+5");
    check(
        r#"{{printf "%v" .Config.Labels}}"#,
        &image,
        "map[org.a:1 org.b:2]",
    );
    check(r#"{{printf "%s" .Size}}"#, &image, "%!s(int64=82)");
    check(r#"{{printf "%e" 1234.5}}"#, &image, "1.234500e+03");
    check(r#"{{printf "%g" 0.000012}}"#, &image, "1.2e-05");
}

#[test]
fn print_and_println() {
    let image = image();
    check(
        r#"{{print "a" 1 2 "b" .Size .Config.Env}}"#,
        &image,
        "a1 2b82 [PATH=/usr/bin A=1]",
    );
    check("{{println .Os .Size}}", &image, "linux 82\n");
    check("{{print}}|", &image, "|");
    check("{{print .Missing}}", &image, "<nil>");
}

#[test]
fn pipelines_pass_the_last_argument() {
    let image = image();
    check("{{.Os | upper}}", &image, "LINUX");
    check_err(
        r#"{{.Config.Env | join ","}}"#,
        &image,
        r#"template: :1:21: executing "" at <",">: wrong type for value; expected string; got []interface {}"#,
    );
    check(r#"{{.Id | printf "%.19s"}}"#, &image, "sha256:ccb28a06ca54");
    check(r#"{{"x" | printf "%s-%s" "a"}}"#, &image, "a-x");
    check(r#"{{.Os | printf "%s" | len}}"#, &image, "5");
}

#[test]
fn conditions_and_comparisons() {
    let image = image();
    check(
        "{{if .Config.Labels}}labels{{else}}none{{end}}",
        &image,
        "labels",
    );
    check(
        "{{if .RepoDigests}}d{{else if .RepoTags}}t{{else}}n{{end}}",
        &image,
        "t",
    );
    check(r#"{{if eq .Os "linux"}}L{{end}}"#, &image, "L");
    check("{{if ne .Size 82}}a{{else}}b{{end}}", &image, "b");
    check("{{if gt .Size 50}}big{{end}}", &image, "big");
    check(r#"{{if lt .Os "m"}}lt{{end}}"#, &image, "lt");
    check("{{if and .Os .Size}}both{{end}}", &image, "both");
    check(r#"{{or .Missing "default"}}"#, &image, "default");
    check("{{and .Os .Architecture}}", &image, "amd64");
    check("{{not .RepoDigests}}", &image, "true");
    check("{{len .RepoTags}}", &image, "2");
    check("{{len .Config.Labels}}", &image, "2");
    check("{{len .Os}}", &image, "5");
    check("{{eq .Size 81 82}}", &image, "true");
    check(
        "{{le 2 2}} {{ge 1 2}} {{lt 1.5 2.5}}",
        &image,
        "true false true",
    );
    check("{{and .RepoDigests .Os}}|", &image, "[]|");
    check("{{or .RepoDigests .Config.User}}|", &image, "|");
}

#[test]
fn variables() {
    let image = image();
    check("{{$x := .Os}}{{$x}}-{{$x}}", &image, "linux-linux");
    check("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", &image, "2");
    check(
        "{{with $c := .Config}}{{$c.User}}|{{len $c.Env}}{{end}}",
        &image,
        "|2",
    );
    check(
        "{{range $i, $e := .RepoTags}}{{if $i}},{{end}}{{$e}}{{end}}",
        &image,
        "registry.demo.test/demo/base:v1,base:latest",
    );
}

#[test]
fn trim_markers_and_comments() {
    let image = image();
    check("a  {{- .Os -}}  b", &image, "alinuxb");
    check("a {{/* comment */}} b", &image, "a  b");
    check("a {{- /* c */ -}} b", &image, "ab");
    check("{{- .Os}}\n", &image, "linux\n");
    check("{{.Os}}\n  {{- .Size}}", &image, "linux82");
    check("x{{-3}}", &image, "x-3");
}

#[test]
fn literals() {
    let image = image();
    check("{{\"a\\tb\\u00e9\"}}", &image, "a\tbé");
    check("{{`raw\\t`}}", &image, "raw\\t");
    check("{{3}}", &image, "3");
    check("{{-3}}", &image, "-3");
    check("{{1.5}}", &image, "1.5");
    check("{{true}}", &image, "true");
    check("{{0x1F}}", &image, "31");
    check("{{'a'}}", &image, "97");
    check("{{1e6}}", &image, "1e+06");
    check("{{1234567.0}}", &image, "1.234567e+06");
    check("{{123456.0}}", &image, "123456");
    check("{{0.0001}}", &image, "0.0001");
    check("{{0.00001}}", &image, "1e-05");
}

#[test]
fn errors_name_the_node() {
    let image = image();
    check_err(
        "{{.Os.Foo}}",
        &image,
        r#"template: :1:5: executing "" at <.Os.Foo>: can't evaluate field Foo in type interface {}"#,
    );
    check_err(
        "{{.Config.Entrypoint.Foo}}",
        &image,
        r#"template: :1:9: executing "" at <.Config.Entrypoint.Foo>: nil pointer evaluating interface {}.Foo"#,
    );
    check_err(
        "{{foo .}}",
        &image,
        r#"template: :1: function "foo" not defined"#,
    );
    check_err("{{.Os", &image, "template: :1: unclosed action");
    check_err("{{if .Os}}x", &image, "template: :1: unexpected EOF");
    check_err("{{end}}", &image, "template: :1: unexpected {{end}}");
    check_err(
        "{{index .RepoTags 5}}",
        &image,
        r#"template: :1:2: executing "" at <index .RepoTags 5>: error calling index: index out of range: 5"#,
    );
    check_err(
        "{{lower .Size}}",
        &image,
        r#"template: :1:8: executing "" at <.Size>: wrong type for value; expected string; got int64"#,
    );
    check_err(
        "{{range .Os}}{{end}}",
        &image,
        r#"template: :1:8: executing "" at <.Os>: range can't iterate over linux"#,
    );
    check_err(
        "{{.Os 1}}",
        &image,
        r#"template: :1:2: executing "" at <.Os>: Os is not a method but has arguments"#,
    );
    check_err("{{$y}}", &image, r#"template: :1: undefined variable "$y""#);
    check_err(
        "{{eq .Os 1}}",
        &image,
        r#"template: :1:2: executing "" at <eq .Os 1>: error calling eq: incompatible types for comparison"#,
    );
    check_err(
        "{{lt true false}}",
        &image,
        r#"template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison"#,
    );
    check("{{index .Os 1}}", &image, "105");
    check_err(
        "{{len .Size}}",
        &image,
        r#"template: :1:2: executing "" at <len .Size>: error calling len: len of type int64"#,
    );
    check_err("{{else}}", &image, "template: :1: unexpected {{else}}");
    check_err(
        "{{printf}}",
        &image,
        r#"template: :1:2: executing "" at <printf>: wrong number of args for printf: want at least 1 got 0"#,
    );
    check_err(
        "{{not}}",
        &image,
        r#"template: :1:2: executing "" at <not>: wrong number of args for not: want 1 got 0"#,
    );
    check_err("{{(.Os}}", &image, "template: :1: unclosed left paren");
    check_err(
        r#"{{"unterminated}}"#,
        &image,
        "template: :1: unterminated quoted string",
    );
    check_err(
        "{{. | .Os}}",
        &image,
        r#"template: :1:6: executing "" at <.Os>: Os is not a method but has arguments"#,
    );
    check_err("{{}}", &image, "template: :1: missing value for command");
    check_err(
        "{{eq .Config.Env .Config.Env}}",
        &image,
        r#"template: :1:2: executing "" at <eq .Config.Env .Config.Env>: error calling eq: non-comparable type [PATH=/usr/bin A=1]: []interface {}"#,
    );
}

#[test]
fn inspect_refuses_missing_fields() {
    let image = image();
    check_inspect_err(
        "{{.Missing}}",
        &image,
        r#"template: :1:2: executing "" at <.Missing>: map has no entry for key "Missing""#,
    );
    check_inspect_err(
        "{{.Config.Nope}}",
        &image,
        r#"template: :1:9: executing "" at <.Config.Nope>: map has no entry for key "Nope""#,
    );
    check_inspect_err(
        "{{.Missing.Deeper}}",
        &image,
        r#"template: :1:10: executing "" at <.Missing.Deeper>: map has no entry for key "Missing""#,
    );
    check_inspect(
        "{{.Os}} {{.Config.Env}}",
        &image,
        "linux [PATH=/usr/bin A=1]",
    );
    check_inspect_err(
        "{{with .Config}}{{.Nope}}{{end}}",
        &image,
        r#"template: :1:18: executing "" at <.Nope>: map has no entry for key "Nope""#,
    );
    check_inspect(r#"{{index .Config.Labels "org.a"}}"#, &image, "1");
}

#[test]
fn docker_images_default_table() {
    let rows: Vec<Value> = rows();
    check_rows(
        "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}",
        &rows,
        IMAGES_HEADERS,
        "REPOSITORY                     TAG       IMAGE ID       CREATED       SIZE\nregistry.demo.test/demo/base   v1        ccb28a06ca54   3 years ago   82B\n<none>                         <none>    0123456789ab   N/A           1.5kB\n",
    );
}

#[test]
fn table_of_one_column() {
    let rows: Vec<Value> = rows();
    check_rows(
        "table {{.ID}}",
        &rows,
        IMAGES_HEADERS,
        "IMAGE ID\nccb28a06ca54\n0123456789ab\n",
    );
}

#[test]
fn table_headers_keep_titles_through_functions() {
    let rows: Vec<Value> = rows();
    check_rows(
        "table {{.Repository}}:{{.Tag}}\\t{{.Size | lower}}\\t{{json .ID}}\\t{{upper .Digest}}",
        &rows,
        IMAGES_HEADERS,
        "REPOSITORY:TAG                    SIZE      IMAGE ID         DIGEST\nregistry.demo.test/demo/base:v1   82b       \"ccb28a06ca54\"   <NONE>\n<none>:<none>                     1.5kb     \"0123456789ab\"   <NONE>\n",
    );
}

#[test]
fn plain_format_prints_one_line_per_row() {
    let rows: Vec<Value> = rows();
    check_rows(
        "{{.Repository}}:{{.Tag}}",
        &rows,
        IMAGES_HEADERS,
        "registry.demo.test/demo/base:v1\n<none>:<none>\n",
    );
}

#[test]
fn table_without_rows_prints_its_header() {
    let rows: Vec<Value> = Vec::new();
    check_rows(
        "table {{.ID}}\\t{{.Size}}",
        &rows,
        IMAGES_HEADERS,
        "IMAGE ID   SIZE\n",
    );
}

#[test]
fn leading_space_is_not_a_table() {
    let rows: Vec<Value> = rows();
    check_rows(
        "  table {{.ID}}",
        &rows,
        IMAGES_HEADERS,
        "table ccb28a06ca54\ntable 0123456789ab\n",
    );
}

#[test]
fn json_rows() {
    let rows: Vec<Value> = rows();
    check_rows(
        "{{json .}}",
        &rows,
        IMAGES_HEADERS,
        "{\"CreatedSince\":\"3 years ago\",\"Digest\":\"<none>\",\"ID\":\"ccb28a06ca54\",\"Repository\":\"registry.demo.test/demo/base\",\"Size\":\"82B\",\"Tag\":\"v1\"}\n{\"CreatedSince\":\"\",\"Digest\":\"<none>\",\"ID\":\"0123456789ab\",\"Repository\":\"<none>\",\"Size\":\"1.5kB\",\"Tag\":\"<none>\"}\n",
    );
}

#[test]
fn table_with_empty_last_cell() {
    let rows: Vec<Value> = rows();
    check_rows(
        "table {{.ID}}\\t{{.Tag}}\\t",
        &rows,
        IMAGES_HEADERS,
        "IMAGE ID       TAG       \nccb28a06ca54   v1        \n0123456789ab   <none>    \n",
    );
}

#[test]
fn table_with_pad() {
    let rows: Vec<Value> = rows();
    check_rows(
        "table {{pad .Tag 1 1}}|\\t{{.ID}}",
        &rows,
        IMAGES_HEADERS,
        " TAG |      IMAGE ID\n v1 |       ccb28a06ca54\n <none> |   0123456789ab\n",
    );
}

#[test]
fn table_rows_of_several_lines() {
    let rows: Vec<Value> = rows();
    check_rows(
        "table {{.ID}}\\t{{.Tag}}\\n{{.Repository}}\\t{{.Size}}",
        &rows,
        IMAGES_HEADERS,
        "IMAGE ID                       TAG\nREPOSITORY                     SIZE\nccb28a06ca54                   v1\nregistry.demo.test/demo/base   82B\n0123456789ab                   <none>\n<none>                         1.5kB\n",
    );
}

#[test]
fn tab_and_newline_escapes_in_plain_formats() {
    let rows: Vec<Value> = rows();
    check_rows(
        "{{.ID}}\\t{{.Tag}}\\n",
        &rows,
        IMAGES_HEADERS,
        "ccb28a06ca54\tv1\n\n0123456789ab\t<none>\n\n",
    );
}

#[test]
fn history_table_headers() {
    let rows: Vec<Value> = vec![
        json!({"ID": "ccb28a06ca54", "CreatedSince": "3 years ago", "CreatedBy": "/bin/sh -c #(nop) ADD file:abc in /", "Size": "82B", "Comment": ""}),
        json!({"ID": "<missing>", "CreatedSince": "3 years ago", "CreatedBy": "/bin/sh -c #(nop)  CMD [\"sh\"]", "Size": "0B", "Comment": "imported"}),
    ];
    check_rows(
        "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}",
        &rows,
        HISTORY_HEADERS,
        "IMAGE          CREATED       CREATED BY                            SIZE      COMMENT\nccb28a06ca54   3 years ago   /bin/sh -c #(nop) ADD file:abc in /   82B       \n<missing>      3 years ago   /bin/sh -c #(nop)  CMD [\"sh\"]         0B        imported\n",
    );
}

#[test]
fn df_table_headers() {
    let rows: Vec<Value> = vec![
        json!({"Type": "Images", "TotalCount": "5", "Active": "0", "Size": "424B", "Reclaimable": "424B (100%)"}),
        json!({"Type": "Containers", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
        json!({"Type": "Local Volumes", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
        json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ];
    check_rows(
        "table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}",
        &rows,
        DF_HEADERS,
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages          5         0         424B      424B (100%)\nContainers      0         0         0B        0B\nLocal Volumes   0         0         0B        0B\nBuild Cache     0         0         0B        0B\n",
    );
}

// imgstore's own behaviour, beyond Go's.

#[test]
fn unsupported_actions_are_named() {
    let image = image();
    for action in ["define", "template", "block", "break", "continue"] {
        check_err(
            &format!("{{{{{action} \"x\"}}}}"),
            &image,
            &format!("template: :1: {{{{{action}}}}} is not supported"),
        );
    }
}

#[test]
fn parse_errors_carry_their_line() {
    assert_eq!(
        render("line one\n{{nope}}", &json!({})),
        Err(TemplateError::Parse {
            line: 2,
            message: "function \"nope\" not defined".to_owned()
        })
    );
}

#[test]
fn execute_errors_carry_line_and_column() {
    assert_eq!(
        render("a\n  {{.A.B}}", &json!({"A": "text"})),
        Err(TemplateError::Execute {
            line: 2,
            column: 6,
            node: ".A.B".to_owned(),
            message: "can't evaluate field B in type interface {}".to_owned()
        })
    );
}

#[test]
fn table_formats_start_with_table() {
    assert!(is_table("table"));
    assert!(is_table("table {{.ID}}"));
    assert!(!is_table("{{.ID}}"));
    assert!(!is_table(" table {{.ID}}"));
}

#[test]
fn a_failing_row_fails_the_whole_listing() {
    let rows = rows();
    assert_eq!(
        render_rows("{{.ID}} {{.Nope}}", &rows, IMAGES_HEADERS).map_err(|e| e.to_string()),
        Err(
            "template: :1:10: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
                .to_owned()
        )
    );
}

#[test]
fn tabwriter_aligns_blocks_of_consecutive_lines() {
    // A line with fewer cells ends the column block above it, as in Go.
    assert_eq!(
        tabwriter("a\tbb\tc\nlonger cell here\tx\ty\nno tabs\nz\tw\n"),
        "a                  bb        c\nlonger cell here   x         y\nno tabs\nz         w\n"
    );
}
