//! `for_each`: a resource written once and made once per key. Until its keys are known it is a
//! template: checked like any resource (its fields, its references, where `${each.…}` may be
//! used) by [`Spec::for_each_problems`]. Once they are (written out, or a variable given a
//! value), [`Spec::expand`] replaces it by one resource per key, named `NAME[KEY]`, with
//! `${each.key}` and `${each.value}` put in: from there on an instance is a resource like any
//! other for the graph, the plan, the state and the executor.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value as Json;

use super::{Expr, ExprKind, Resource, Spec, VarType};
use crate::source::{Diagnostic, Loc, SourceFile};
use crate::template::{self, EACH_KEY, Each, Part, Reference};
use crate::yaml::Key;

const SHAPE_HELP: &str = "write a list of strings (`for_each: [a, b]`), a map (`for_each: { a: { port: 8080 } }`), or `${var.NAME}` of a list or map variable";
const KEY_HELP: &str =
    "a key names an instance, `NAME[KEY]`: 1 to 128 letters, digits, `_`, `-` and `.`";

/// One instance's key and the value `${each.value}` stands for.
type Keys = Vec<(String, Expr)>;

impl Spec {
    /// The problems of `for_each` as written: its shape, its keys where they are written out,
    /// `${each.…}` where no instance is being made, and references that take a resource with
    /// `for_each` for one without (`${web.port}`) or the other way round (`${db[a].url}`).
    /// Keys a variable gives are judged by [`Spec::expand`], once it has a value.
    pub fn for_each_problems(&self) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        if self.resources.iter().all(|r| r.for_each.is_none()) && self.expanded.is_empty() {
            // The common spec: only `${each.…}` and `NAME[KEY]` need looking for.
            let mut any = false;
            self.each_reference_anywhere(&mut |r, _| {
                any |= matches!(r, Reference::Each(_))
                    || matches!(r, Reference::Resource { name, .. } if name.contains('['));
            });
            let named = self
                .resources
                .iter()
                .any(|r| r.depends_on.iter().any(|(n, _)| n.contains('[')));
            if !any && !named {
                return problems;
            }
        }
        for resource in &self.resources {
            let list = match &resource.for_each {
                Some(expr) => {
                    if let Err(problem) = self.keys(expr) {
                        problems.push(problem);
                    }
                    self.lists(expr)
                }
                None => false,
            };
            let mut check = |reference: &Reference, loc: Loc| {
                let problem = match reference {
                    Reference::Each(each) if resource.for_each.is_none() => {
                        Some(outside(reference, Some(&resource.name), loc))
                    }
                    Reference::Each(Each::ValueOf(_)) if list => Some(
                        Diagnostic::new(
                            loc,
                            format!("`{}`: the values of a list are its strings", reference.written()),
                        )
                        .help("write `${each.value}`, or give `for_each` a map of maps: `{ KEY: { ATTR: … } }`"),
                    ),
                    Reference::Each(_) => None,
                    Reference::Resource { name, .. }
                        if resource.for_each.is_none()
                            && template::split_address(name).is_some_and(|(_, k)| k == EACH_KEY) =>
                    {
                        Some(outside(reference, Some(&resource.name), loc))
                    }
                    Reference::Resource { name, attr } => self.address_problem(name, attr, loc),
                    _ => None,
                };
                if let Some(mut problem) = problem {
                    problem.loc = self.source.refine(problem.loc, &reference.written());
                    problems.push(problem);
                }
            };
            for (_, expr) in &resource.with {
                expr.each_reference(&mut check);
            }
            for gate in &resource.verify {
                gate.each_reference(&mut check);
            }
            for (name, loc) in &resource.depends_on {
                if let Some((base, _)) = template::split_address(name)
                    && self.resource(base).is_some_and(|r| r.for_each.is_none())
                {
                    problems.push(not_repeated(base, None, *loc));
                }
            }
        }
        let mut elsewhere = |reference: &Reference, loc: Loc| {
            let problem = match reference {
                Reference::Each(_) => Some(outside(reference, None, loc)),
                Reference::Resource { name, .. }
                    if template::split_address(name).is_some_and(|(_, k)| k == EACH_KEY) =>
                {
                    Some(outside(reference, None, loc))
                }
                Reference::Resource { name, attr } => self.address_problem(name, attr, loc),
                _ => None,
            };
            if let Some(mut problem) = problem {
                problem.loc = self.source.refine(problem.loc, &reference.written());
                problems.push(problem);
            }
        };
        for gate in &self.verify {
            gate.each_reference(&mut elsewhere);
        }
        for output in &self.outputs {
            output.value.each_reference(&mut elsewhere);
        }
        for block in &self.providers {
            for (_, expr) in &block.config {
                expr.each_reference(&mut |r, loc| {
                    if matches!(r, Reference::Each(_)) {
                        elsewhere(r, loc);
                    }
                });
            }
        }
        problems
    }

    /// Calls `f` with every reference of the resources' fields and gates, the stack's gates and
    /// the stack's outputs.
    fn each_reference_anywhere<'a>(&'a self, f: &mut impl FnMut(&'a Reference, Loc)) {
        for resource in &self.resources {
            for (_, expr) in &resource.with {
                expr.each_reference(f);
            }
            for gate in &resource.verify {
                gate.each_reference(f);
            }
        }
        for gate in &self.verify {
            gate.each_reference(f);
        }
        for output in &self.outputs {
            output.value.each_reference(f);
        }
    }

    /// What is wrong with a reference to `name`'s `attr` as far as `for_each` goes.
    fn address_problem(&self, name: &str, attr: &str, loc: Loc) -> Option<Diagnostic> {
        match template::split_address(name) {
            Some((base, _)) => {
                let target = self.resource(base)?;
                if target.for_each.is_some() {
                    return None;
                }
                Some(not_repeated(base, Some(attr), loc))
            }
            None => {
                let repeated = self.expanded.contains_key(name)
                    || self.resource(name).is_some_and(|r| r.for_each.is_some());
                repeated.then(|| {
                    Diagnostic::new(
                        loc,
                        format!("`{name}` has `for_each`: a reference names one of its instances"),
                    )
                    .help(format!("write `${{{name}[KEY].{attr}}}`"))
                })
            }
        }
    }

    /// Whether a `for_each` gives a list (its values are its strings).
    fn lists(&self, expr: &Expr) -> bool {
        match &expr.kind {
            ExprKind::List(_) => true,
            ExprKind::Str(parts) => matches!(
                parts.as_slice(),
                [Part::Ref(Reference::Var(v))] if self.var(v).is_some_and(|d| d.ty == VarType::List)
            ),
            _ => false,
        }
    }

    /// The keys of a `for_each`, with their values; `None` while a variable has no value.
    fn keys(&self, expr: &Expr) -> Result<Option<Keys>, Diagnostic> {
        let unknown = || -> Diagnostic {
            Diagnostic::new(
                expr.loc,
                "the keys of `for_each` must be known before planning: they name its instances",
            )
            .help("write them out, or give the whole list or map as `${var.NAME}`")
        };
        let mut keys = Vec::new();
        match &expr.kind {
            ExprKind::List(items) => {
                let mut seen: HashMap<&str, Loc> = HashMap::new();
                for item in items {
                    let ExprKind::Str(parts) = &item.kind else {
                        return Err(Diagnostic::new(
                            item.loc,
                            format!(
                                "`for_each` lists strings, not {}",
                                item.literal_kind().unwrap_or("a reference")
                            ),
                        )
                        .help("put the key in quotes to make it a string"));
                    };
                    let [Part::Text(key)] = parts.as_slice() else {
                        return Err(unknown());
                    };
                    if let Some(first) = seen.insert(key, item.loc) {
                        return Err(Diagnostic::new(
                            item.loc,
                            format!("duplicate key `{key}` in `for_each`"),
                        )
                        .help(format!(
                            "`{key}` is first listed at {}:{}; each key names one instance",
                            first.line, first.column
                        )));
                    }
                    keys.push((key.clone(), item.clone()));
                }
            }
            ExprKind::Map(entries) => {
                keys.extend(entries.iter().map(|(k, v)| (k.name.clone(), v.clone())));
            }
            ExprKind::Str(parts) => match parts.as_slice() {
                [Part::Ref(Reference::Var(name))] => return self.var_keys(name, expr),
                [Part::Text(_)] => return Err(shape(expr, "a string")),
                _ => return Err(unknown()),
            },
            _ => {
                return Err(shape(expr, expr.literal_kind().unwrap_or("a value")));
            }
        }
        for (key, value) in &keys {
            if !template::valid_key(key) {
                let at = match &expr.kind {
                    ExprKind::Map(entries) => entries
                        .iter()
                        .find(|(k, _)| &k.name == key)
                        .map_or(value.loc, |(k, _)| k.loc),
                    _ => value.loc,
                };
                return Err(Diagnostic::new(
                    at,
                    format!("`for_each` key `{key}` cannot name an instance"),
                )
                .help(KEY_HELP));
            }
        }
        Ok(Some(keys))
    }

    /// The keys a `for_each: "${var.NAME}"` gives, judged once the variable has its value.
    fn var_keys(&self, name: &str, expr: &Expr) -> Result<Option<Keys>, Diagnostic> {
        let at = self.source.refine(expr.loc, &format!("${{var.{name}}}"));
        let Some(decl) = self.var(name) else {
            return Err(Diagnostic::new(at, format!("unknown variable `{name}`"))
                .suggest(name, self.vars.iter().map(|d| d.name.as_str()))
                .help_if_none("declare it under `vars:` with `type: list` or `type: map`"));
        };
        if !decl.ty.is_collection() {
            return Err(Diagnostic::new(
                at,
                format!(
                    "variable `{name}` is a {}, and `for_each` takes a list or a map",
                    decl.ty.name()
                ),
            )
            .help("declare it with `type: list` or `type: map`"));
        }
        if decl.sensitive {
            return Err(Diagnostic::new(
                at,
                format!("variable `{name}` is sensitive, and the keys of `for_each` name resources in plans and the state"),
            )
            .help("give `for_each` a variable that is not sensitive; a secret belongs in a value"));
        }
        let Some(value) = self.var_values.get(name) else {
            return Ok(None);
        };
        let mut keys = Vec::new();
        match value {
            Json::Array(items) => {
                let mut seen = BTreeSet::new();
                for item in items {
                    let Json::String(key) = item else {
                        return Err(Diagnostic::new(
                            at,
                            format!(
                                "variable `{name}` must list strings for `for_each`, not {item}"
                            ),
                        ));
                    };
                    if !seen.insert(key.as_str()) {
                        return Err(Diagnostic::new(
                            at,
                            format!(
                                "variable `{name}` lists `{key}` twice: each key of `for_each` names one instance"
                            ),
                        ));
                    }
                    keys.push((key.clone(), literal(item, expr.loc)));
                }
            }
            Json::Object(entries) => {
                keys.extend(
                    entries
                        .iter()
                        .map(|(k, v)| (k.clone(), literal(v, expr.loc))),
                );
            }
            _ => return Ok(None),
        }
        if let Some((key, _)) = keys.iter().find(|(k, _)| !template::valid_key(k)) {
            return Err(Diagnostic::new(
                at,
                format!(
                    "variable `{name}` gives `for_each` key `{key}`, which cannot name an instance"
                ),
            )
            .help(KEY_HELP));
        }
        Ok(Some(keys))
    }

    /// Replaces every resource with `for_each` whose keys are known by its instances, in key
    /// order where it was written; `depends_on` naming it then names them all. `text_field`
    /// says whether a type's field takes text, so that a number or boolean given whole by
    /// `${each.value}` becomes its text there, as a variable's does.
    ///
    /// Returns the problems found: keys that cannot name an instance, `${each.value.ATTR}` that
    /// names nothing, and references to instances (`NAME[KEY]`) whose key is not among them.
    pub fn expand(&mut self, text_field: &dyn Fn(&str, &str) -> bool) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        if self.resources.iter().all(|r| r.for_each.is_none()) {
            return problems;
        }
        let written = std::mem::take(&mut self.resources);
        let mut resources = Vec::with_capacity(written.len());
        for resource in written {
            let Some(expr) = &resource.for_each else {
                resources.push(resource);
                continue;
            };
            match self.keys(expr) {
                Ok(Some(mut keys)) => {
                    keys.sort_by(|a, b| a.0.cmp(&b.0));
                    for (key, value) in &keys {
                        match self.instance(&resource, key, value, text_field) {
                            Ok(instance) => resources.push(instance),
                            Err(problem) => problems.push(problem),
                        }
                    }
                    let keys = keys.into_iter().map(|(k, _)| k).collect();
                    self.expanded.insert(resource.name, keys);
                }
                Ok(None) => resources.push(resource),
                Err(problem) => {
                    problems.push(problem);
                    resources.push(resource);
                }
            }
        }
        self.resources = resources;
        self.index = self
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        for resource in &mut self.resources {
            if resource
                .depends_on
                .iter()
                .any(|(n, _)| self.expanded.contains_key(n))
            {
                resource.depends_on = std::mem::take(&mut resource.depends_on)
                    .into_iter()
                    .flat_map(|(name, loc)| match self.expanded.get(&name) {
                        Some(keys) => keys
                            .iter()
                            .map(|k| (template::address(&name, k), loc))
                            .collect(),
                        None => vec![(name, loc)],
                    })
                    .collect();
            }
        }
        problems.extend(self.missing_instances());
        // One reference written in a template is made once per instance: report it once.
        let mut seen = BTreeSet::new();
        problems.retain(|d| seen.insert((d.loc.line, d.loc.column, d.message.clone())));
        problems
    }

    /// References and `depends_on` naming an instance whose key its resource does not have.
    fn missing_instances(&self) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        let mut check = |name: &str, loc: Loc, written: Option<String>| {
            // `NAME[each.key]` in a resource whose own keys are not known yet is judged when
            // they are.
            let Some((base, key)) = template::split_address(name).filter(|(_, k)| *k != EACH_KEY)
            else {
                return;
            };
            let Some(keys) = self.expanded.get(base) else {
                return;
            };
            if self.index.contains_key(name) {
                return;
            }
            // An instance's reference may be written with `each.key` in the key's place.
            let loc = written.map_or(loc, |w| {
                let found = self.source.refine(loc, &w);
                let each = w.replace(&format!("[{key}]"), &format!("[{EACH_KEY}]"));
                if found == loc {
                    self.source.refine(loc, &each)
                } else {
                    found
                }
            });
            let listed: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            problems.push(
                Diagnostic::new(loc, format!("`{base}` has no key `{key}`"))
                    .suggest(key, keys.iter().map(String::as_str))
                    .help_if_none(if listed.is_empty() {
                        format!("`{base}` has no instances: its `for_each` is empty")
                    } else {
                        format!("its keys are {}", listed.join(", "))
                    }),
            );
        };
        for resource in &self.resources {
            for (name, loc) in &resource.depends_on {
                check(name, *loc, None);
            }
        }
        self.each_reference_anywhere(&mut |reference, loc| {
            if let Reference::Resource { name, .. } = reference {
                check(name, loc, Some(reference.written()));
            }
        });
        problems
    }

    /// Instance `key` of `template`, whose `${each.value}` is `value`.
    fn instance(
        &self,
        template: &Resource,
        key: &str,
        value: &Expr,
        text_field: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Resource, Diagnostic> {
        let each = Instance {
            source: &self.source,
            key,
            value,
        };
        let with = template
            .with
            .iter()
            .map(|(k, e)| {
                let text = text_field(&template.type_name, &k.name);
                Ok((k.clone(), each.put_in(e, text)?))
            })
            .collect::<Result<_, Diagnostic>>()?;
        let verify = template
            .verify
            .iter()
            .map(|g| each.put_in(g, false))
            .collect::<Result<_, Diagnostic>>()?;
        Ok(Resource {
            name: template::address(&template.name, key),
            loc: template.loc,
            type_name: template.type_name.clone(),
            type_loc: template.type_loc,
            with,
            depends_on: template.depends_on.clone(),
            protect: template.protect,
            keep_on_failure: template.keep_on_failure,
            verify,
            adopt: template.adopt,
            ignore_changes: template.ignore_changes.clone(),
            for_each: None,
        })
    }

    /// The resources with `for_each` whose keys are not known yet (a variable without a value).
    pub fn unexpanded(&self) -> impl Iterator<Item = &Resource> {
        self.resources.iter().filter(|r| r.for_each.is_some())
    }
}

/// What `${each.…}` stands for in one instance.
struct Instance<'a> {
    source: &'a SourceFile,
    key: &'a str,
    value: &'a Expr,
}

impl Instance<'_> {
    /// `expr` with `${each.…}` and `NAME[each.key]` put in; `text`: the field takes text.
    fn put_in(&self, expr: &Expr, text: bool) -> Result<Expr, Diagnostic> {
        let kind = match &expr.kind {
            ExprKind::Str(parts) => match parts.as_slice() {
                // Whole, the value keeps its kind (a map stays a map), as a variable's does.
                [Part::Ref(r @ Reference::Each(each @ (Each::Value | Each::ValueOf(_))))] => {
                    let value = self.value(each, r, expr.loc)?;
                    match (&value.kind, text) {
                        (ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_), true) => {
                            ExprKind::Str(vec![Part::Text(scalar_text(&value.kind))])
                        }
                        (kind, _) => kind.clone(),
                    }
                }
                _ => {
                    let mut out: Vec<Part> = Vec::with_capacity(parts.len());
                    for part in parts {
                        self.part_in(part, expr.loc, &mut out)?;
                    }
                    if out.is_empty() {
                        out.push(Part::Text(String::new()));
                    }
                    ExprKind::Str(out)
                }
            },
            ExprKind::List(items) => ExprKind::List(
                items
                    .iter()
                    .map(|e| self.put_in(e, false))
                    .collect::<Result<_, _>>()?,
            ),
            ExprKind::Map(entries) => ExprKind::Map(
                entries
                    .iter()
                    .map(|(k, e)| Ok((k.clone(), self.put_in(e, false)?)))
                    .collect::<Result<_, Diagnostic>>()?,
            ),
            other => other.clone(),
        };
        Ok(Expr {
            kind,
            loc: expr.loc,
        })
    }

    /// One part of a longer string, with what it stands for pushed onto `out`.
    fn part_in(&self, part: &Part, loc: Loc, out: &mut Vec<Part>) -> Result<(), Diagnostic> {
        let reference = match part {
            Part::Text(t) => {
                push_text(out, t);
                return Ok(());
            }
            Part::Ref(r) => r,
        };
        match reference {
            Reference::Each(Each::Key) => push_text(out, self.key),
            Reference::Each(each) => {
                let value = self.value(each, reference, loc)?;
                match &value.kind {
                    ExprKind::Str(parts) => {
                        for p in parts {
                            match p {
                                Part::Text(t) => push_text(out, t),
                                Part::Ref(r) => out.push(Part::Ref(r.clone())),
                            }
                        }
                    }
                    ExprKind::Null => {}
                    kind @ (ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_)) => {
                        push_text(out, &scalar_text(kind));
                    }
                    ExprKind::List(_) | ExprKind::Map(_) => {
                        let what = value.literal_kind().unwrap_or("a collection");
                        return Err(Diagnostic::new(
                            self.source.refine(loc, &reference.written()),
                            format!(
                                "`{}` of `{}` is {what}, which cannot be written inside a string",
                                reference.written(),
                                self.key
                            ),
                        )
                        .help(format!(
                            "write `\"{}\"` alone to pass it as it is, or name one of its entries: `${{each.value.NAME}}`",
                            reference.written()
                        )));
                    }
                }
            }
            Reference::Resource { name, attr } => {
                let name = match template::split_address(name) {
                    Some((base, EACH_KEY)) => template::address(base, self.key),
                    _ => name.clone(),
                };
                out.push(Part::Ref(Reference::Resource {
                    name,
                    attr: attr.clone(),
                }));
            }
            other => out.push(Part::Ref(other.clone())),
        }
        Ok(())
    }

    /// What `${each.value}` or `${each.value.ATTR}` stands for.
    fn value(&self, each: &Each, reference: &Reference, loc: Loc) -> Result<&Expr, Diagnostic> {
        let Each::ValueOf(attr) = each else {
            return Ok(self.value);
        };
        let found = match &self.value.kind {
            ExprKind::Map(entries) => entries.iter().find(|(k, _)| &k.name == attr),
            _ => None,
        };
        found.map(|(_, v)| v).ok_or_else(|| {
            let at = self.source.refine(loc, &reference.written());
            let problem = match &self.value.kind {
                ExprKind::Map(entries) => Diagnostic::new(
                    at,
                    format!(
                        "`{}`: the value of key `{}` has no `{attr}`",
                        reference.written(),
                        self.key
                    ),
                )
                .suggest(attr, entries.iter().map(|(k, _)| k.name.as_str())),
                _ => Diagnostic::new(
                    at,
                    format!(
                        "`{}`: the value of key `{}` is {}, not a map",
                        reference.written(),
                        self.key,
                        self.value.literal_kind().unwrap_or("a reference")
                    ),
                ),
            };
            problem.help_if_none(format!("the value of each key must be a map with `{attr}`"))
        })
    }
}

fn push_text(out: &mut Vec<Part>, text: &str) {
    if let Some(Part::Text(last)) = out.last_mut() {
        last.push_str(text);
    } else {
        out.push(Part::Text(text.to_string()));
    }
}

fn scalar_text(kind: &ExprKind) -> String {
    match kind {
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(String::new, |n| n.to_string())
        }
        ExprKind::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// A variable's value as an expression with nothing to resolve: text stays text, `${` and all.
fn literal(value: &Json, loc: Loc) -> Expr {
    let kind = match value {
        Json::Null => ExprKind::Null,
        Json::Bool(b) => ExprKind::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => ExprKind::Int(i),
            None => ExprKind::Float(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => ExprKind::Str(vec![Part::Text(s.clone())]),
        Json::Array(items) => ExprKind::List(items.iter().map(|v| literal(v, loc)).collect()),
        Json::Object(entries) => ExprKind::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    (
                        Key {
                            name: k.clone(),
                            loc,
                        },
                        literal(v, loc),
                    )
                })
                .collect(),
        ),
    };
    Expr { kind, loc }
}

fn shape(expr: &Expr, found: &str) -> Diagnostic {
    Diagnostic::new(
        expr.loc,
        format!("`for_each` must be a list of strings or a map, not {found}"),
    )
    .help(SHAPE_HELP)
}

fn outside(reference: &Reference, resource: Option<&str>, loc: Loc) -> Diagnostic {
    let problem = Diagnostic::new(
        loc,
        format!(
            "`{}` is only known in a resource with `for_each`",
            reference.written()
        ),
    );
    match resource {
        Some(name) => problem.help(format!(
            "`{name}` has no `for_each`: add one, or write the value itself"
        )),
        None => problem.help("each instance of a resource with `for_each` has its own key and value; name one with `NAME[KEY]`"),
    }
}

fn not_repeated(name: &str, attr: Option<&str>, loc: Loc) -> Diagnostic {
    let problem = Diagnostic::new(
        loc,
        format!("`{name}` has no `for_each`, so it has no instances"),
    );
    match attr {
        Some(attr) => problem.help(format!("write `${{{name}.{attr}}}`")),
        None => problem.help(format!("write `{name}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_variables_are_text_not_templates() {
        let loc = Loc::new(1, 1, 1);
        let expr = literal(&serde_json::json!({"a": "${x.y}", "n": 2}), loc);
        let ExprKind::Map(entries) = expr.kind else {
            panic!("a map")
        };
        assert!(
            matches!(&entries[0].1.kind, ExprKind::Str(p) if p == &vec![Part::Text("${x.y}".into())])
        );
        assert!(matches!(entries[1].1.kind, ExprKind::Int(2)));
    }
}
