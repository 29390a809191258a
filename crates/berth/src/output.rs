//! Output as docker prints it: aligned tables, `--format json`, and Go templates
//! (`--format '{{.Repository}}:{{.Tag}}'`, `--format 'table {{.ID}}\t{{.Names}}'`).
//!
//! Every command turns its items into `serde_json::Value` objects whose keys are the field
//! names docker's templates use (`ID`, `Repository`, `Names`, ...), then hands them here.

use std::collections::HashMap;
use std::io::Write;

use gtmpl_value::{FuncError, Value};
use serde_json::Value as Json;

/// How a listing is printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The command's default table.
    Table,
    /// One JSON document: an array of the items (podman's `--format json`).
    Json,
    /// A Go template applied to each item; with `table` first, a header row too.
    Template { template: String, table: bool },
}

impl Format {
    /// Reads a `--format` value (`None`: the default table).
    pub fn parse(value: Option<&str>) -> Format {
        match value.map(str::trim) {
            None | Some("") | Some("table") => Format::Table,
            Some("json") => Format::Json,
            Some(other) => match other.strip_prefix("table") {
                Some(rest) if rest.starts_with(char::is_whitespace) => Format::Template {
                    template: unescape(rest.trim_start()),
                    table: true,
                },
                _ => Format::Template {
                    template: unescape(other),
                    table: false,
                },
            },
        }
    }
}

/// docker accepts `\t` and `\n` written as two characters in a format string.
fn unescape(template: &str) -> String {
    template.replace("\\t", "\t").replace("\\n", "\n")
}

/// Aligned columns the way docker's tabwriter prints them (min width 10, padding 3).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut writer = tabwriter::TabWriter::new(Vec::new())
        .minwidth(10)
        .padding(3);
    let _ = writeln!(writer, "{}", headers.join("\t"));
    for row in rows {
        let _ = writeln!(writer, "{}", row.join("\t"));
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Prints `items` in `format`. `default` renders the default table (headers and rows).
pub fn render(
    items: &[Json],
    format: &Format,
    default: impl FnOnce() -> (Vec<&'static str>, Vec<Vec<String>>),
) -> Result<String, TemplateError> {
    match format {
        Format::Table => {
            let (headers, rows) = default();
            Ok(table(&headers, &rows))
        }
        Format::Json => Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(items).unwrap_or_default()
        )),
        Format::Template {
            template,
            table: with_header,
        } => {
            let compiled = Template::parse(template)?;
            let mut lines = Vec::with_capacity(items.len() + 1);
            if *with_header {
                lines.push(header_row(template));
            }
            for item in items {
                lines.push(compiled.render(item)?);
            }
            if template.contains('\t') {
                let mut writer = tabwriter::TabWriter::new(Vec::new())
                    .minwidth(10)
                    .padding(3);
                for line in &lines {
                    let _ = writeln!(writer, "{line}");
                }
                let bytes = writer.into_inner().unwrap_or_default();
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                Ok(lines.iter().map(|l| format!("{l}\n")).collect())
            }
        }
    }
}

/// The header of a `table` template: each `{{.Field}}` becomes its name in capitals with
/// docker's spacing (`{{.CreatedSince}}` → `CREATED SINCE`), the rest is kept.
fn header_row(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let action = rest[start + 2..start + end].trim();
        let field = action
            .split_whitespace()
            .find_map(|word| word.strip_prefix('.'))
            .unwrap_or(action);
        out.push_str(&header_name(field));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn header_name(field: &str) -> String {
    let mut name = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase()) && chars[i - 1] != '.');
        if boundary {
            name.push(' ');
        }
        name.extend(c.to_uppercase());
    }
    name
}

/// A `--format` template that cannot be parsed or applied.
#[derive(Debug)]
pub struct TemplateError(String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template: {}", self.0)
    }
}

impl std::error::Error for TemplateError {}

/// A parsed Go template with docker's extra functions (`json`, `upper`, `lower`, `join`,
/// `title`, `truncate`).
pub struct Template(gtmpl::Template);

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut template = gtmpl::Template::default();
        template.add_func("json", json_func);
        template.add_func("upper", upper_func);
        template.add_func("lower", lower_func);
        template.add_func("title", title_func);
        template.add_func("join", join_func);
        template.add_func("truncate", truncate_func);
        template
            .parse(text)
            .map_err(|e| TemplateError(format!("{text:?}: {e}")))?;
        Ok(Template(template))
    }

    pub fn render(&self, item: &Json) -> Result<String, TemplateError> {
        let context = gtmpl::Context::from(to_value(item));
        self.0
            .render(&context)
            .map_err(|e| TemplateError(e.to_string()))
    }
}

fn to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Json::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil | Value::NoValue | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                n.as_f64().map(Json::from).unwrap_or(Json::Null)
            }
        }
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(map) | Value::Map(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), to_json(&map[k])))
                    .collect(),
            )
        }
    }
}

fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [value] => Ok(value),
        _ => Err(FuncError::ExactlyXArgs(name.to_string(), 1)),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => to_json(other).to_string(),
    }
}

fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    let value = one_arg("json", args)?;
    Ok(Value::String(to_json(value).to_string()))
}

fn upper_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        text_of(one_arg("upper", args)?).to_uppercase(),
    ))
}

fn lower_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        text_of(one_arg("lower", args)?).to_lowercase(),
    ))
}

fn title_func(args: &[Value]) -> Result<Value, FuncError> {
    let text = text_of(one_arg("title", args)?);
    let mut chars = text.chars();
    let titled = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    Ok(Value::String(titled))
}

fn join_func(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [Value::Array(items), sep] => Ok(Value::String(
            items
                .iter()
                .map(text_of)
                .collect::<Vec<_>>()
                .join(&text_of(sep)),
        )),
        [other, _] => Ok(Value::String(text_of(other))),
        _ => Err(FuncError::ExactlyXArgs("join".to_string(), 2)),
    }
}

fn truncate_func(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [value, Value::Number(n)] => {
            let length = n.as_u64().unwrap_or(0) as usize;
            Ok(Value::String(text_of(value).chars().take(length).collect()))
        }
        _ => Err(FuncError::ExactlyXArgs("truncate".to_string(), 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn format_values_are_read_as_docker_reads_them() {
        assert_eq!(Format::parse(None), Format::Table);
        assert_eq!(Format::parse(Some("json")), Format::Json);
        assert_eq!(
            Format::parse(Some("table {{.ID}}\\t{{.Names}}")),
            Format::Template {
                template: "{{.ID}}\t{{.Names}}".into(),
                table: true
            }
        );
        assert_eq!(
            Format::parse(Some("{{.Repository}}:{{.Tag}}")),
            Format::Template {
                template: "{{.Repository}}:{{.Tag}}".into(),
                table: false
            }
        );
    }

    #[test]
    fn templates_see_fields_and_docker_functions() {
        let item = json!({"Repository": "docker.io/library/busybox", "Tag": "latest",
                          "Labels": {"a": "b"}, "Names": ["x", "y"], "Size": 42});
        let t = Template::parse("{{.Repository}}:{{.Tag}} {{json .Labels}} {{join .Names \",\"}} {{.Size}} {{upper .Tag}}").unwrap();
        assert_eq!(
            t.render(&item).unwrap(),
            "docker.io/library/busybox:latest {\"a\":\"b\"} x,y 42 LATEST"
        );
    }

    #[test]
    fn a_bad_template_names_itself() {
        let err = Template::parse("{{.ID").err().expect("unterminated action");
        assert!(err.to_string().contains("{{.ID"), "{err}");
    }

    #[test]
    fn table_templates_get_a_header_and_aligned_columns() {
        let items = vec![json!({"ID": "abc", "CreatedSince": "2 days ago"})];
        let out = render(
            &items,
            &Format::parse(Some("table {{.ID}}\t{{.CreatedSince}}")),
            || unreachable!(),
        )
        .unwrap();
        assert_eq!(out, "ID           CREATED SINCE\nabc          2 days ago\n");
    }

    #[test]
    fn default_tables_pad_like_docker() {
        let out = table(
            &["REPOSITORY", "TAG"],
            &[vec!["busybox".into(), "latest".into()]],
        );
        assert_eq!(out, "REPOSITORY   TAG\nbusybox      latest\n");
    }
}
